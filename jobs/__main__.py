"""``python -m jobs write-contract``: regenerate ``docs/schemas/`` and the generated blocks of
``docs/contract.md`` from the job declarations and the models."""

from __future__ import annotations

import argparse

from jobs import contract_doc, schemas


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m jobs", description=__doc__)
    parser.add_argument("command", choices=["write-contract"])
    parser.parse_args()
    for path in [*schemas.write(), contract_doc.write()]:
        print(path)  # noqa: T201


if __name__ == "__main__":
    main()
