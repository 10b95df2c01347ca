"""Checking a ``/metrics`` page the way Prometheus's own tooling does.

:func:`check_metrics` runs ``promtool check metrics`` (Debian's ``prometheus`` package; CI
installs it, see ``.ci/run``) on the page, and our own checks of the naming conventions that
do not need it. Without promtool on PATH the test fails under CI (``CI`` set) and runs only
our checks elsewhere, saying so in the report header (``tests/conftest.py``).
"""

from __future__ import annotations

import os
import shutil
import subprocess

from prometheus_client.parser import text_string_to_metric_families

PREFIX = "gcal_"


def promtool() -> str | None:
    return shutil.which("promtool")


def families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """``{sample name: {sorted labels: value}}`` of a page in the text format."""
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` with exactly ``labels``, or None."""
    return families(text).get(name, {}).get(tuple(sorted(labels.items())))


def check_metrics(text: str) -> None:
    """Fail unless ``text`` passes promtool (when present) and our naming checks."""
    for family in text_string_to_metric_families(text):
        assert family.name.startswith(PREFIX), family.name
        assert family.documentation, f"{family.name} has no help text"
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), f"{family.name}: histograms here are times"
        for label in {label for s in family.samples for label in s.labels}:
            assert label.islower(), f"{family.name}: label {label} is not snake case"
    binary = promtool()
    if binary is None:
        assert not os.environ.get("CI"), (
            "promtool is not installed: CI installs Debian's prometheus package (.ci/run)"
        )
        return
    checked = subprocess.run(  # noqa: S603 - promtool from PATH, our own page as input
        [binary, "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    report = (checked.stdout + checked.stderr).decode(errors="replace")
    assert checked.returncode == 0, f"promtool check metrics:\n{report}"
