#!/bin/sh
# Enqueue one gcal-jobs job with nothing but redis-cli, wait for it, print its result JSON.
#
#   examples/enqueue.sh list_calendars '{"user_id": "u1"}'
#   GCAL_PREFIX=gcal TIMEOUT=60 examples/enqueue.sh create_event "$(cat event.json)"
#
# It follows docs/contract.md step by step: subscribe to the job's completion channel, enqueue
# (the arq payload, added atomically unless the job id is already known), GET the result key,
# and only if the result is not there yet wait for the completion message.
#
# Environment:
#   REDIS_URL              redis://[user:password@]host:port/db (wins over the next two)
#   REDIS_HOST, REDIS_PORT default 127.0.0.1 and 6379 (database 0)
#   GCAL_PREFIX            the deployment's Redis prefix (Settings.redis_prefix), default gcal
#   TIMEOUT                whole seconds to wait for the result, default 30
#   JOB_ID                 the job id, default a fresh random one; reuse it to wait for a job
#                          enqueued before (an id that is already known is not enqueued again)
#   GCAL_WAIT              "notify" (default): woken by the completion message;
#                          "poll": GET the result key once a second (where pub/sub is not
#                          available, e.g. behind some proxies)
#
# Exit status: 0 the result is printed and "ok" is true; 1 it is printed and "ok" is false;
# 2 usage error; 3 Redis error; 124 no result within TIMEOUT.
set -eu

usage() {
    echo "usage: $0 JOB_NAME ARGS_JSON_OBJECT" >&2
    exit 2
}
die() {
    echo "$0: $2" >&2
    exit "$1"
}

[ "$#" -eq 2 ] || usage
job=$1
args=$2
prefix=${GCAL_PREFIX:-gcal}
timeout=${TIMEOUT:-30}
wait_mode=${GCAL_WAIT:-notify}

command -v redis-cli >/dev/null 2>&1 ||
    die 3 "redis-cli not found (Debian/Ubuntu: apt-get install redis-tools)"
case $job in '' | *[!a-z_]*) die 2 "JOB_NAME must be a job name such as list_calendars" ;; esac
case $args in '{'*'}') ;; *) die 2 "ARGS_JSON_OBJECT must be a JSON object: {...}" ;; esac
case $prefix in '' | *[!A-Za-z0-9_.-]*) die 2 "GCAL_PREFIX must be 1-32 of A-Z a-z 0-9 _ . -" ;; esac
case $timeout in '' | *[!0-9]*) die 2 "TIMEOUT must be whole seconds" ;; esac
case $wait_mode in notify | poll) ;; *) die 2 "GCAL_WAIT must be notify or poll" ;; esac

if [ -z "${JOB_ID:-}" ]; then
    if command -v uuidgen >/dev/null 2>&1; then
        JOB_ID=$(uuidgen | tr -d '-' | tr 'A-F' 'a-f')
    elif [ -r /proc/sys/kernel/random/uuid ]; then
        JOB_ID=$(tr -d '-' </proc/sys/kernel/random/uuid)
    else
        JOB_ID=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    fi
fi
job_id=$JOB_ID
case $job_id in '' | *[!A-Za-z0-9._-]*) die 2 "JOB_ID must be 1-128 of A-Z a-z 0-9 _ . -" ;; esac
[ "${#job_id}" -le 128 ] || die 2 "JOB_ID must be 1-128 of A-Z a-z 0-9 _ . -"

# From here on "$@" holds redis-cli's connection options, so every call is `redis-cli "$@" ...`.
if [ -n "${REDIS_URL:-}" ]; then
    set -- --no-auth-warning -u "$REDIS_URL"
else
    set -- -h "${REDIS_HOST:-127.0.0.1}" -p "${REDIS_PORT:-6379}"
fi

# Redis names (gcal/keys.py and arq's own keys).
queue="$prefix:queue"
result_key="$prefix:result:$job_id"
channel="$prefix:result:$job_id:done"

tmp=$(mktemp -d)
sub_pid=
dog_pid=
# shellcheck disable=SC2317  # run by the EXIT trap, which shellcheck does not follow
cleanup() {
    [ -z "$dog_pid" ] || kill "$dog_pid" 2>/dev/null || true
    [ -z "$sub_pid" ] || kill "$sub_pid" 2>/dev/null || true
    exec 3<&- || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The watchdog: after TIMEOUT it marks the run as timed out and ends the subscriber, whose
# end of file then wakes the reader below. Its own stdio is /dev/null so that a leftover
# sleep never holds the caller's pipes open.
start_watchdog() {
    (
        trap 'kill "$s" 2>/dev/null; exit 0' TERM
        sleep "$timeout" &
        s=$!
        wait "$s" || exit 0
        : >"$tmp/timed-out"
        [ -z "$sub_pid" ] || kill "$sub_pid" 2>/dev/null
    ) </dev/null >/dev/null 2>&1 &
    dog_pid=$!
}
timed_out() { [ -e "$tmp/timed-out" ]; }
redis_failed() {
    [ ! -s "$tmp/sub.err" ] || cat "$tmp/sub.err" >&2
    die 3 "$1"
}

# 1. Subscribe first, and wait for Redis to confirm the subscription: a completion published
#    from now on reaches us, and one published before has its result already in place.
if [ "$wait_mode" = notify ]; then
    mkfifo "$tmp/sub"
    redis-cli "$@" --raw SUBSCRIBE "$channel" >"$tmp/sub" 2>"$tmp/sub.err" &
    sub_pid=$!
    exec 3<"$tmp/sub"
    start_watchdog
    if ! { IFS= read -r kind <&3 && IFS= read -r _ <&3 && IFS= read -r _ <&3; } ||
        [ "$kind" != subscribe ]; then
        if timed_out; then die 124 "timed out subscribing to $channel"; fi
        redis_failed "could not subscribe to $channel"
    fi
else
    start_watchdog
fi

# 2. Enqueue as arq does: the payload at arq:job:<id> (expiring a day after it is due) and the
#    id in the queue, scored with its due time in ms, in one atomic step that adds nothing when
#    the id already has a job or an arq result, then wakes idle workers (<p>:queue:wake; without
#    it a worker finds the job at its next poll). The clock is Redis's, shared by every producer.
now=$(redis-cli "$@" --raw TIME) || redis_failed "could not reach Redis"
sec=${now%%[!0-9]*}
usec=${now##*[!0-9]}
now_ms=$((sec * 1000 + usec / 1000))
payload="{\"t\":null,\"f\":\"$job\",\"a\":[],\"k\":$args,\"et\":$now_ms}"
enqueue='if redis.call("EXISTS", KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
redis.call("ZADD", KEYS[3], ARGV[3], ARGV[4])
redis.call("PUBLISH", KEYS[4], "")
return 1'
added=$(redis-cli "$@" --raw EVAL "$enqueue" 4 "arq:job:$job_id" "arq:result:$job_id" "$queue" \
    "$queue:wake" "$payload" 86400000 "$now_ms" "$job_id") || redis_failed "could not enqueue"
case $added in
1) echo "enqueued $job as job $job_id" >&2 ;;
0) echo "job $job_id is already known; not enqueued again, waiting for its result" >&2 ;;
*) redis_failed "could not enqueue: $added" ;;
esac

# 3. The result may be there already (a fast worker, or a known job id).
get_result() {
    result=$(redis-cli "$@" --raw GET "$result_key") || redis_failed "could not read $result_key"
}
get_result "$@"

# 4. Otherwise wait: woken by the completion message (then GET again), or polling.
while [ -z "$result" ]; do
    if [ "$wait_mode" = notify ]; then
        if ! { IFS= read -r kind <&3 && IFS= read -r _ <&3 && IFS= read -r _ <&3; }; then
            if timed_out; then die 124 "no result for job $job_id within ${timeout}s"; fi
            redis_failed "the subscription to $channel ended"
        fi
        [ "$kind" = message ] || continue
    else
        if timed_out; then die 124 "no result for job $job_id within ${timeout}s"; fi
        sleep 1
    fi
    get_result "$@"
done

printf '%s\n' "$result"
# The envelope starts {"job_id":...,"job":...,"ok":...; the id and name hold no quotes.
case ${result#*\"ok\":} in true*) exit 0 ;; *) exit 1 ;; esac
