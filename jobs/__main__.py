"""``python -m jobs write-schemas``: regenerate ``docs/schemas/`` from the contract models."""

from __future__ import annotations

import argparse

from jobs.schemas import write


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m jobs")
    parser.add_argument("command", choices=["write-schemas"])
    parser.parse_args()
    for path in write():
        print(path)  # noqa: T201


if __name__ == "__main__":
    main()
