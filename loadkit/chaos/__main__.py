"""``python -m loadkit.chaos run|list|rollback``: the chaos commands on their own."""

import sys

from loadkit.chaos.cli import main

sys.exit(main())
