"""``python -m loadkit`` runs the CLI."""

import sys

from loadkit.cli import main

sys.exit(main())
