"""Chart colours come from the outcome vocabulary; a cause loadkit does not know keeps a colour of
its own (the same every time) and its place in the legend."""

from __future__ import annotations

from pathlib import Path

from loadkit.profile.outcome import CAUSE_INFO, Cause
from loadkit.report.charts import CAUSE_COLOURS, EXTRA_COLOURS, cause_colours, causes_chart
from loadkit.report.metrics import compute_metrics
from tests.report.rundirs import RunDirBuilder


def test_every_cause_has_its_vocabulary_colour() -> None:
    assert {c.value: CAUSE_INFO[c].colour for c in Cause} == CAUSE_COLOURS


def test_unknown_causes_get_distinct_stable_colours() -> None:
    causes = ["throttled", "quota_exceeded", "fraud_hold", "timeout"]
    colours = cause_colours(causes)
    assert colours["throttled"] == CAUSE_COLOURS["throttled"]
    unknown = {colours["quota_exceeded"], colours["fraud_hold"]}
    assert len(unknown) == 2 and unknown <= set(EXTRA_COLOURS)
    assert not unknown & set(CAUSE_COLOURS.values())
    assert cause_colours(list(reversed(causes))) == colours, "order does not matter"


def test_an_unknown_cause_is_named_in_the_legend(tmp_path: Path) -> None:
    rd = RunDirBuilder(tmp_path / "r")
    for t in range(5):
        rd.second(t, "only", ok=90, busy={"quota_exceeded": 6, "throttled": 4}, lat_ms=[5.0])
    svg = causes_chart(compute_metrics(rd.write()))
    # the legend wraps a long label: the name and the note may be on two lines
    assert "quota_exceeded" in svg and "(unknown cause)" in svg and "throttled" in svg
    assert cause_colours(["quota_exceeded"])["quota_exceeded"] in svg
