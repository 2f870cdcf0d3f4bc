"""``python -m pruning_core``: the practitioner's command line (see :mod:`pruning_core.cli`)."""

from __future__ import annotations

import sys

from pruning_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
