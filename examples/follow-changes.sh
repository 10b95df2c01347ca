#!/bin/sh
# Follow gcal-jobs change events with nothing but redis-cli: read the notifications stream in a
# consumer group, print one change per line (its JSON), acknowledge it once printed.
#
#   examples/follow-changes.sh
#   TYPES=event_deleted GROUP=billing CONSUMER=billing-1 examples/follow-changes.sh
#
# It follows docs/contract.md ("Change events", "Calendar sync"): the group is created once
# (XGROUP CREATE ... MKSTREAM, from the end of the stream unless START says otherwise); each
# start first reads this consumer's own pending entries (delivered before a restart, never
# acknowledged), then new ones (XREADGROUP ... BLOCK ... >), and acknowledges (XACK) a batch
# once it is printed. So a restart loses nothing and repeats nothing acknowledged; an entry
# printed but not yet acknowledged when the script was killed is printed again (at least
# once: the JSON's event_id and etag tell a repeat). Entries of other types are acknowledged
# without being printed.
#
# Environment:
#   REDIS_URL              redis://[user:password@]host:port/db (wins over the next two)
#   REDIS_HOST, REDIS_PORT default 127.0.0.1 and 6379 (database 0)
#   GCAL_PREFIX            the deployment's Redis prefix (Settings.redis_prefix), default gcal
#   GROUP                  the consumer group, one per consuming service; default follow-changes
#   CONSUMER               this consumer in the group; keep it across restarts (its pending
#                          entries are its own); default the host name
#   TYPES                  comma-separated types to print; default
#                          event_created,event_updated,event_deleted,sync_reset
#   START                  where a new group starts: $ (default: what is added from now on)
#                          or 0 (everything the stream still holds)
#   BLOCK_MS               how long one read waits for new entries, default 5000
#   COUNT                  entries per read, default 100
#   MAX                    exit once this many changes are printed (default: until stopped)
#
# Exit status: 0 MAX changes printed; 2 usage error; 3 Redis error; 130/143 interrupted.
set -eu

die() {
    echo "$0: $2" >&2
    exit "$1"
}

prefix=${GCAL_PREFIX:-gcal}
group=${GROUP:-follow-changes}
consumer=${CONSUMER:-$(uname -n)}
types=${TYPES:-event_created,event_updated,event_deleted,sync_reset}
start=${START:-\$}
block=${BLOCK_MS:-5000}
count=${COUNT:-100}
max=${MAX:-0}

command -v redis-cli >/dev/null 2>&1 ||
    die 3 "redis-cli not found (Debian/Ubuntu: apt-get install redis-tools)"
[ "$#" -eq 0 ] || die 2 "no arguments; settings come from the environment (see the header)"
case $prefix in '' | *[!A-Za-z0-9_.-]*) die 2 "GCAL_PREFIX must be 1-32 of A-Z a-z 0-9 _ . -" ;; esac
case $group in '' | *[!A-Za-z0-9_.:-]*) die 2 "GROUP must be letters, digits, _ . : -" ;; esac
case $consumer in '' | *[!A-Za-z0-9_.:-]*) die 2 "CONSUMER must be letters, digits, _ . : -" ;; esac
case $types in '' | *[!a-z_,]*) die 2 "TYPES must be type names separated by commas" ;; esac
case $start in \$ | 0) ;; *) die 2 "START must be \$ or 0" ;; esac
for number in "$block" "$count" "$max"; do
    case $number in '' | *[!0-9]*) die 2 "BLOCK_MS, COUNT and MAX must be whole numbers" ;; esac
done

# From here on "$@" holds redis-cli's connection options, so every call is `redis-cli "$@" ...`.
if [ -n "${REDIS_URL:-}" ]; then
    set -- --no-auth-warning -u "$REDIS_URL"
else
    set -- -h "${REDIS_HOST:-127.0.0.1}" -p "${REDIS_PORT:-6379}"
fi

stream="$prefix:notifications:stream" # gcal/keys.py: the durable notification stream

tmp=$(mktemp -d)
cli_pid=
# shellcheck disable=SC2317  # run by the EXIT trap, which shellcheck does not follow
cleanup() {
    [ -z "$cli_pid" ] || kill "$cli_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One redis-cli call, its --raw output in $tmp/out. It runs in the background and is waited
# for, so that a TERM during a blocking read ends the script at once.
cli() {
    redis-cli "$@" >"$tmp/out" 2>"$tmp/err" &
    cli_pid=$!
    status=0
    wait "$cli_pid" || status=$?
    cli_pid=
    if [ "$status" -ne 0 ] || grep -q '^\(ERR\|WRONGTYPE\|NOGROUP\|NOAUTH\|NOPERM\)' "$tmp/out"; then
        cat "$tmp/err" "$tmp/out" >&2
        die 3 "redis-cli failed"
    fi
}

# 1. The group, once: from the end of the stream (or its start), creating the stream if
#    needed. A group that exists already keeps its position.
redis-cli "$@" XGROUP CREATE "$stream" "$group" "$start" MKSTREAM >"$tmp/out" 2>&1 || true
case $(cat "$tmp/out") in
OK | *BUSYGROUP*) ;;
*)
    cat "$tmp/out" >&2
    die 3 "could not create the consumer group $group"
    ;;
esac
echo "following $stream in group $group as $consumer (types: $types)" >&2

printed=0

# Print the wanted entries of one XREADGROUP answer (in $tmp/out), then acknowledge every entry
# read, printed or not. With --raw the answer is one item a line: the stream's name, then per
# entry its id and its fields as name/value lines (type, json). An entry id is the only line of
# the form <ms>-<seq>: JSON starts with "{", and field names and types are letters. An entry
# trimmed from the stream while pending comes back with no fields: acknowledged, not printed.
# Sets $got to the number of entries read and $last to the last entry id.
handle() {
    got=0
    ids=
    field=
    kind=
    while IFS= read -r line; do
        case $line in
        "$stream" | '') continue ;;
        *[!0-9-]* | -* | *-) ;;
        *-*)
            if [ "$max" -gt 0 ] && [ "$printed" -ge "$max" ]; then
                break # the rest stays pending: read again at the next start
            fi
            got=$((got + 1))
            last=$line
            ids="$ids $line"
            field=
            kind=
            continue
            ;;
        esac
        if [ -z "$field" ]; then
            field=$line
            continue
        fi
        case $field in
        type) kind=$line ;;
        json)
            case ",$types," in
            *",$kind,"*)
                printf '%s\n' "$line"
                printed=$((printed + 1))
                ;;
            esac
            ;;
        esac
        field=
    done <"$tmp/out"
    if [ -n "$ids" ]; then
        # shellcheck disable=SC2086  # the ids, one word each
        cli "$@" --raw XACK "$stream" "$group" $ids
    fi
}

done_yet() { [ "$max" -gt 0 ] && [ "$printed" -ge "$max" ]; }

# 2. This consumer's own pending entries first (read before a restart, never acknowledged).
last=0
while :; do
    from=$last
    cli "$@" --raw XREADGROUP GROUP "$group" "$consumer" COUNT "$count" STREAMS "$stream" "$from"
    handle "$@"
    if done_yet; then exit 0; fi
    [ "$got" -gt 0 ] || break
done

# 3. Then new entries, as they come.
while :; do
    cli "$@" --raw XREADGROUP GROUP "$group" "$consumer" COUNT "$count" BLOCK "$block" \
        STREAMS "$stream" '>'
    handle "$@"
    if done_yet; then exit 0; fi
done
