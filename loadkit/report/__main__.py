"""``python -m loadkit.report report|compare``: the report commands on their own."""

import sys

from loadkit.report.cli import main

sys.exit(main())
