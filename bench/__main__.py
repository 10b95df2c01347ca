"""``python -m bench`` (or ``./dev bench``): run every benchmark and print its report."""

from __future__ import annotations

import argparse
import asyncio

from bench import emulator_rate, jobs_rate


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    args = parser.parse_args()
    asyncio.run(emulator_rate.main(quick=args.quick))
    asyncio.run(jobs_rate.main(quick=args.quick))


if __name__ == "__main__":
    main()
