"""``python -m symflops``: the command line (see :mod:`symflops.cli`)."""

import sys

from symflops.cli import main

if __name__ == "__main__":
    sys.exit(main())
