"""``python -m symflops.papers``: write docs/papers.md (``--check``: exit 1 when stale)."""

import sys

from symflops.papers import main

sys.exit(main())
