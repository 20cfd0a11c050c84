"""Breakdowns by instance, network class and journey; how each instance fared during a fault;
goodput, service time and the target's own causes; metrics of one slice of a run — on a
hand-built run with known numbers (tests/report/conftest.py: build_breakdown_run)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from loadkit.report.compare import compare_metrics
from loadkit.report.jsonreport import SCHEMA_PATH, report_dict
from loadkit.report.markdown import render_markdown
from loadkit.report.metrics import compute_metrics, names_instance
from loadkit.report.model import Scope
from loadkit.report.views import fault_instances_text, status_banner


def test_busy_rate_by_instance_network_and_journey(breakdown_run: Path) -> None:
    m = compute_metrics(breakdown_run)
    by = {b.dimension: {r.value: r for r in b.rows} for b in m.breakdowns}
    assert list(by) == ["instance", "network", "journey"]
    one, two = by["instance"]["wallet-1"], by["instance"]["wallet-2"]
    # wallet-1: 25 of 112 seconds at 30% busy (both journeys, both classes); wallet-2 never
    assert one.action.counts.answered == two.action.counts.answered == 112 * 2 * 100
    assert one.action.counts.busy == 25 * 2 * 30 and two.action.counts.busy == 0
    assert one.action.counts.causes == {"timeout": 1000, "unavailable": 500}
    assert one.action.latency.p95 is not None and one.action.latency.p95 > 900
    assert two.action.latency.p95 is not None and two.action.latency.p95 < 50
    peak = {s.phase: s for s in one.phases}["peak"]
    assert peak.busy_rate == pytest.approx(25 * 60 / (30 * 200))
    assert {s.phase: s.busy_rate for s in two.phases}["peak"] == 0.0
    assert len(one.busy_series) == len(m.series) and max(r or 0 for r in one.busy_series) == 0.3
    assert set(by["network"]) == {"wifi", "weak-4g"} and set(by["journey"]) == {"pay", "balance"}


def test_a_fault_row_says_which_instances_it_hit_and_how_each_fared(breakdown_run: Path) -> None:
    m = compute_metrics(breakdown_run)
    slow, blip = m.fault("slow-db-link"), m.fault("db-blip")
    assert slow is not None and blip is not None
    assert slow.hit == ["wallet-1"] and blip.hit == []  # "postgres" names no instance
    during = {i.instance: i for i in slow.instances}
    assert during["wallet-1"].action.busy_rate == pytest.approx(0.3)
    assert during["wallet-2"].action.busy_rate == 0.0
    assert fault_instances_text(slow) == "wallet-1 (hit) 30.0% busy · wallet-2 0.0% busy"
    assert names_instance("client-wallet-1", "wallet-1")
    assert names_instance("wallet-1-postgres", "wallet-1")
    assert not names_instance("wallet-10", "wallet-1") and not names_instance(
        "postgres", "wallet-1"
    )


def test_goodput_service_time_and_the_servers_own_causes(breakdown_run: Path) -> None:
    m = compute_metrics(breakdown_run)
    peak = m.phase("peak")
    assert peak is not None and peak.achieved_rate == pytest.approx(400)
    assert peak.goodput_rate == pytest.approx(400 - 25 * 60 / 30)  # achieved − busy
    assert m.total.goodput_rate == pytest.approx((44800 - 1500) / 112)
    assert [p.goodput for p in m.series][50] == 400 - 60
    assert peak.action.service.p95 is not None and peak.action.service.p95 < peak.action.latency.p95
    assert any(p.service_p95 for p in m.series)
    server = m.server_causes
    assert server is not None and server.source == "reference wallet /metrics"
    assert server.total == {"db_pool_timeout": 24 * 30, "db_timeout": 24 * 5}
    assert server.groups["db_pool_timeout"] == "pool wait"
    assert list(server.instances) == ["wallet-1"]
    assert peak.server_causes == server.total  # every scrape fell into the peak
    assert m.phase("evening").server_causes == {}  # type: ignore[union-attr]
    slow = m.fault("slow-db-link")
    assert slow is not None and slow.server_causes["db_pool_timeout"] == 24 * 30


def test_metrics_of_one_slice_of_the_run(breakdown_run: Path) -> None:
    whole = compute_metrics(breakdown_run)
    one = compute_metrics(breakdown_run, scope=Scope(instance="wallet-1"))
    two = compute_metrics(breakdown_run, scope=Scope(instance="wallet-2", journey="pay"))
    assert one.scope == {"instance": "wallet-1"}
    assert one.total.action.counts.answered == whole.total.action.counts.answered / 2
    assert one.total.action.busy_rate == pytest.approx(2 * whole.total.action.busy_rate)
    assert two.total.action.counts.busy == 0 and two.total.action.counts.answered == 112 * 100
    assert one.total.offered is None, "the schedule's offered load is not a slice's"
    assert one.fault("slow-db-link").action.busy_rate == pytest.approx(0.3)  # type: ignore[union-attr]
    assert one.server_causes is not None and two.server_causes is not None
    assert two.server_causes.total == {}  # wallet-2 counted no busy answer
    weak = compute_metrics(breakdown_run, scope=Scope(network="weak-4g", endpoint="POST /pay"))
    assert weak.total.request.counts.answered == 112 * 2 * 30
    assert weak.total.action.counts.answered == 0  # an endpoint is one request: no actions
    c = compare_metrics(whole, whole)
    kinds = {r.kind for r in c.rows}
    assert {"instance", "network", "journey"} <= kinds and not c.regressions
    assert any(r.kind == "instance" and r.name == "wallet-1 busy" for r in c.rows)


def test_report_json_carries_the_breakdowns_and_validates(breakdown_run: Path) -> None:
    doc = report_dict(compute_metrics(breakdown_run))
    jsonschema.validate(
        doc, json.loads(SCHEMA_PATH.read_text()), cls=jsonschema.Draft202012Validator
    )
    by = {b["dimension"]: b for b in doc["breakdowns"]}
    assert by["instance"]["rows"][0]["value"] == "wallet-1"
    assert doc["faults"][0]["instances"][0] == {**doc["faults"][0]["instances"][0], "hit": True}
    assert doc["server_causes"]["total"]["db_pool_timeout"] == 720
    assert doc["status_banner"] is None and doc["total"]["goodput_rate"] > 0


@pytest.mark.parametrize(
    ("status", "title"),
    [("aborted", "Run ABORTED at 1:52 of 1:52"), ("interrupted", "Run INTERRUPTED at 1:00")],
)
def test_a_run_that_ended_early_is_marked_in_every_report(
    tmp_path: Path, status: str, title: str
) -> None:
    from loadkit.report.html import render_html
    from loadkit.report.junit import render_junit
    from tests.report.conftest import build_breakdown_run

    end = 112 if status == "aborted" else 60
    run = build_breakdown_run(tmp_path / status, status=status, end=end)
    m = compute_metrics(run)
    banner = status_banner(m)
    assert banner is not None and banner.kind == "bad" and banner.title.startswith(title)
    assert title in render_html(m) and 'role="alert"' in render_html(m)
    assert f"**{banner.title}**" in render_markdown(m)
    assert banner.title in render_junit(m) and f'type="run-{status}"' in render_junit(m)
    assert report_dict(m)["status_banner"]["title"] == banner.title
    if status == "interrupted":  # stopped at 1:00 of 1:52: rates over the minute it ran
        assert m.stopped_s == 60.0 and m.total.achieved_rate == pytest.approx(400.0)
        peak = m.phase("peak")
        assert peak is not None and peak.achieved_rate == pytest.approx(400.0)  # 18 s of 30
        assert m.phase("cool-down").achieved_rate is None  # type: ignore[union-attr]
        assert "1:00 of 1:52" in render_html(m)
