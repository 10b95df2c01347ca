"""Redis names: one prefix, and user ids validated before they become part of a key."""

from __future__ import annotations

import pytest

from gcal.errors import InvalidRequest
from gcal.keys import RedisKeys


def test_names_share_the_prefix() -> None:
    keys = RedisKeys("tenant-a")
    names = [
        keys.tokens("u1"),
        keys.reconsent("u1"),
        keys.refresh_lock("u1"),
        keys.oauth_state("abc"),
        keys.notifications,
        keys.notification_stream,
    ]
    assert all(name.startswith("tenant-a:") for name in names)
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    "user_id", ["", "a:b", "a b", "x" * 129, "ümlaut", "a/b", "a*", "a\nb", "a\x00"]
)
def test_bad_user_ids_never_reach_a_key(user_id: str) -> None:
    with pytest.raises(InvalidRequest, match="user_id must be"):
        RedisKeys().tokens(user_id)


@pytest.mark.parametrize("user_id", ["u", "user-42", "alice@example.com", "A.b_c+d", "x" * 128])
def test_good_user_ids(user_id: str) -> None:
    assert RedisKeys().tokens(user_id) == f"gcal:tokens:{user_id}"
