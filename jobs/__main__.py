"""``python -m jobs``: run jobs, get consent URLs, follow notifications, regenerate the
contract (see :mod:`jobs.cli`, or ``python -m jobs --help``)."""

from __future__ import annotations

import sys

from jobs.cli import main

if __name__ == "__main__":
    sys.exit(main())
