"""``python -m symflops.papers``: write docs/papers.md (``--check``: exit 1 when stale)."""

import sys

from symflops.papers import main

if __name__ == "__main__":
    sys.exit(main())
