"""``loadkit demo``: the reference stack, a compressed Double 11 night with a database crash at the
peak and a slow database link after it, and the report — the whole tool in about three minutes::

    result = run_profile(demo_options(Path("reports")))
"""

from __future__ import annotations

import sys
from pathlib import Path

from loadkit.run.orchestrator import RunOptions

DATA = Path(__file__).with_name("data")
PROFILE = DATA / "demo-double11.yaml"
SCENARIO = DATA / "demo-chaos.yaml"


def demo_options(out: Path) -> RunOptions:
    """A run of the demo profile and scenario on a stack of its own (stopped at the end)."""
    return RunOptions(
        profile=PROFILE,
        chaos=SCENARIO,
        out=out,
        own_stack=True,
        command=["loadkit", *sys.argv[1:]],
    )
