"""``python -m symflops``: the command line (see :mod:`symflops.cli`)."""

import sys

from symflops.cli import main

sys.exit(main())
