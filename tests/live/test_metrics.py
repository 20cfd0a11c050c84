"""The OpenMetrics endpoint, scraped by a real Prometheus server (Debian's ``prometheus``) during
a real ``loadkit run --metrics`` (the CLI, in a subprocess) with a fault: the totals Prometheus
holds afterwards equal report.json's. The shipped rules pass ``promtool``, and every query of the
shipped Grafana dashboard uses series that Prometheus really got from the endpoint."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadkit.live.metrics import METRIC_NAMES
from loadkit.stack.ports import free_port
from loadkit.stack.reference import ReferenceStack

ROOT = Path(__file__).parents[2]
RULES = ROOT / "dashboards" / "prometheus" / "loadkit-rules.yaml"
RULES_TEST = ROOT / "dashboards" / "prometheus" / "loadkit-rules.test.yaml"
DASHBOARD = ROOT / "dashboards" / "grafana" / "loadkit-live.json"
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
PUSHGATEWAY = shutil.which("prometheus-pushgateway")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None or PUSHGATEWAY is None,
    reason="prometheus not installed (apt-get install prometheus prometheus-pushgateway; "
    ".ci/run does)",
)

PROFILE = """
name: metrics
stages:
  - {name: warm, duration: 3s, rate: 30/s}
  - {name: peak, duration: 6s, rate: 40/s}
journeys:
  - {wallet: balance}
client: {timeout: 2s}
"""
SCENARIO = """
name: metrics
steady_state: {before: false, after: false}
faults:
  - {name: maintenance, type: wallet.maintenance, at: 3s, duration: 3s}
"""
SLO = """
name: metrics
objectives:
  - max_busy_rate: 90%
"""


def _names(expr: str) -> set[str]:
    """Metric and recording-rule names a PromQL expression reads."""
    return set(re.findall(r"\bloadkit[:_][a-zA-Z0-9_:]+", expr))


def _dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [a["expr"] for a in board["annotations"]["list"] if "expr" in a]
    exprs.append(board["templating"]["list"][1]["definition"])
    return exprs


@needs_prometheus
def test_rules_pass_promtool() -> None:
    check = subprocess.run([str(PROMTOOL), "check", "rules", str(RULES)], capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run(
        [str(PROMTOOL), "test", "rules", RULES_TEST.name],
        cwd=RULES_TEST.parent,
        capture_output=True,
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_dashboard_reads_only_what_loadkit_exports() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "loadkit-live" and board["panels"]
    exported = {
        *METRIC_NAMES,
        *(f"loadkit_latency_seconds_{s}" for s in ("bucket", "sum", "count")),
    }
    for panel in board["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = _names(target["expr"])
            assert names and names <= exported, (panel["title"], names - exported)
    annotation = next(a for a in board["annotations"]["list"] if a.get("expr"))
    assert "loadkit_fault_active" in annotation["expr"]


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A real Prometheus scraping 127.0.0.1:PORT every second, with the shipped rules."""
    assert PROMETHEUS is not None
    target, api = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{RULES}]\n"
        "scrape_configs:\n"
        "  - job_name: loadkit\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{target}']}}]\n"
    )
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{api}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{api}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "prometheus never got ready"
            time.sleep(0.2)
        yield url, target
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """A real Pushgateway on loopback."""
    assert PUSHGATEWAY is not None
    port = free_port()
    proc = subprocess.Popen(
        [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "the pushgateway died"
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the pushgateway never got ready"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


def _pushed(url: str, name: str, run_id: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    found = 0.0
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if (
                sample.name == name
                and sample.labels.get("run_id") == run_id
                and all(sample.labels.get(k) == v for k, v in labels.items())
            ):
                found += sample.value
    return found


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    assert r.status_code == 200, r.text
    return list(r.json()["data"]["result"])


def _value(url: str, expr: str) -> float:
    found = _query(url, expr)
    assert len(found) == 1, (expr, found)
    return float(found[0]["value"][1])


@pytest.mark.slow
@needs_prometheus
def test_prometheus_totals_equal_the_report(
    stack: ReferenceStack, tmp_path: Path, prometheus: tuple[str, int], pushgateway: str
) -> None:
    url, port = prometheus
    (tmp_path / "p.yaml").write_text(PROFILE)
    (tmp_path / "s.yaml").write_text(SCENARIO)
    (tmp_path / "slo.yaml").write_text(SLO)
    out = tmp_path / "reports"
    run = subprocess.run(
        [
            *(sys.executable, "-m", "loadkit", "run", str(tmp_path / "p.yaml")),
            *("--chaos", str(tmp_path / "s.yaml"), "--stack-dir", str(stack.stack_dir)),
            *("--out", str(out), "--metrics", f"127.0.0.1:{port}"),
            *("--slo", str(tmp_path / "slo.yaml"), "--push-to", pushgateway),
            *("--web", "127.0.0.1:0"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"metrics: http://127.0.0.1:{port}/metrics" in run.stdout
    assert "live view: http://127.0.0.1:" in run.stdout, "no page opened: no lingering"
    (run_dir,) = out.iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    rid = run_dir.name
    last = 'last_over_time({}{{run_id="' + rid + '"{}}}[10m])'

    def total(metric: str, labels: str = "") -> float:
        return _value(url, f"sum({last.format(metric, labels)})")

    for level in ("action", "request"):
        counts = report["total"][level]["counts"]
        assert counts["busy"] > 0, "the fault made users busy"
        sel = f',level="{level}"'
        assert total("loadkit_answered_total", sel) == counts["answered"], level
        assert total("loadkit_answered_total", sel + ',outcome="busy"') == counts["busy"], level
        assert total("loadkit_answered_total", sel + ',outcome="ok"') == counts["ok"], level
        assert total("loadkit_busy_total", sel) == counts["busy"], level
        assert total("loadkit_unsent_total", sel) == counts["unsent"], level
        assert total("loadkit_latency_seconds_count", sel) > 0
        pushed = _pushed(pushgateway, "loadkit_answered_total", rid, level=level)
        assert pushed == counts["answered"], "the last push holds the final totals"
    causes = report["total"]["request"]["counts"]["causes"]
    for cause, count in causes.items():
        sel = f',level="request",cause="{cause}"'
        assert total("loadkit_busy_total", sel) == count, cause
    fault = f'max_over_time(loadkit_fault_active{{run_id="{rid}",fault="maintenance"}}[10m])'
    assert _value(url, fault) == 1.0
    assert _value(url, f'max_over_time(loadkit_phase{{run_id="{rid}",phase="peak"}}[10m])') == 1
    limit = f'last_over_time(loadkit_busy_rate_limit{{run_id="{rid}",source="slo metrics"}}[10m])'
    assert _value(url, limit) == 0.9
    offered = total("loadkit_offered_arrivals_total")
    assert abs(offered - report["total"]["offered"]) < 1.0
    # every series the dashboard and the rules read exists in Prometheus
    got = set(httpx.get(f"{url}/api/v1/label/__name__/values", timeout=10).json()["data"])
    used = set().union(*(_names(e) for e in _dashboard_queries()))
    assert used <= got, used - got
    assert _query(url, f'loadkit:busy_rate:ratio_rate1m{{run_id="{rid}"}}'), "rules evaluate"
