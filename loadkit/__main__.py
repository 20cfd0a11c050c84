"""``python -m loadkit`` runs the CLI."""

import sys

from loadkit.cli.main import main

sys.exit(main())
