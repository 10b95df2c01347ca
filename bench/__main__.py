"""``python -m bench`` (or ``./dev bench``): run every benchmark and print its report; or,
with ``compare``, the comparison against Celery and the arq no-op ceiling (``bench.compare``);
or, with ``sync``, the calendar sync benchmark alone (``bench.sync_rate``).

    python -m bench [--quick]                          # emulator_rate, jobs_rate, sync_rate
    python -m bench compare [--quick | --smoke] [--repeats N] [--output PATH]
    python -m bench sync [--quick] [--output PATH]
    python -m bench profile [--page N] [--latency-ms MS] [--seconds S] [--label NAME]  # py-spy

The load driver runs on uvloop, as the worker does: it shares a core with the emulator and
Redis, and the less it takes there, the less it bounds what it measures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvloop

from bench import compare, emulator_rate, jobs_rate, profile, sync_rate


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "benchmark",
        nargs="?",
        choices=("all", "compare", "sync", "profile"),
        default="all",
        help="all: emulator and job rates against their baselines, then sync (default); "
        "compare: ours against Celery and the arq no-op ceiling; "
        "sync: the cost of a no-change sync round, memory per tracked event, push and "
        "polling latency; profile: a py-spy profile of a loaded worker",
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--smoke", action="store_true", help="compare: the seconds-long smoke")
    parser.add_argument("--repeats", type=int, help="compare: repeats (default 3, quick 1)")
    parser.add_argument("--output", type=Path, help="compare, sync: the JSON result file")
    parser.add_argument("--page", type=int, default=250, help="profile: events per page")
    parser.add_argument(
        "--latency-ms", type=int, default=0, help="profile: latency the emulator adds"
    )
    parser.add_argument("--seconds", type=float, default=10, help="profile: how long")
    parser.add_argument("--label", default="now", help="profile: names the output file")
    args = parser.parse_args()
    if args.benchmark == "profile":
        profile.run(
            job="get_events",
            page=args.page,
            latency_ms=args.latency_ms,
            seconds=args.seconds,
            label=args.label,
            out=profile.PROFILES,
        )
        return
    if args.benchmark == "compare":
        uvloop.run(
            compare.main(
                quick=args.quick, smoke=args.smoke, repeats=args.repeats, output=args.output
            )
        )
        return
    if args.benchmark == "sync":
        uvloop.run(sync_rate.main(quick=args.quick, output=args.output))
        return
    uvloop.run(emulator_rate.main(quick=args.quick))
    uvloop.run(jobs_rate.main(quick=args.quick))
    uvloop.run(sync_rate.main(quick=args.quick))


if __name__ == "__main__":
    main()
