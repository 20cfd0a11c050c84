"""``loadkit demo``: the reference stack, a compressed Double 11 night with a database crash at the
peak and a slow database link after it, and the report — the whole tool in about three minutes.
``loadkit demo --tls`` does the same over HTTPS: the stack's own CA signs every wallet's
certificate, and the load, the faults' checks and the probes verify with it::

    result = run_profile(demo_options(Path("reports")))
    result = run_profile(demo_options(Path("reports"), tls=True))
"""

from __future__ import annotations

import sys
from pathlib import Path

from loadkit.run.orchestrator import RunOptions

DATA = Path(__file__).with_name("data")
PROFILE = DATA / "demo-double11.yaml"
SCENARIO = DATA / "demo-chaos.yaml"


def demo_options(out: Path, *, tls: bool = False) -> RunOptions:
    """A run of the demo profile and scenario on a stack of its own (stopped at the end),
    over HTTPS with ``tls``."""
    return RunOptions(
        profile=PROFILE,
        chaos=SCENARIO,
        out=out,
        own_stack=True,
        stack_tls=tls,
        command=["loadkit", *sys.argv[1:]],
    )
