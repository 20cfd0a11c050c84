"""A run's own stack over HTTPS (what `loadkit demo --tls` does): the stack makes its CA, the
run's load verifies every wallet with it (each URL with its wallet's name), and the chaos
controller's faults and probes reach the wallets over HTTPS too. Through the network classes'
proxies every answer still names its instance (wallet-1, wallet-2), and the wallets' own busy
causes are scraped over HTTPS, verified with the stack's CA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadkit.demo import demo_options
from loadkit.errors import ConfigError
from loadkit.report.metrics import compute_metrics
from loadkit.run.orchestrator import Runner, RunOptions
from loadkit.rundir import RunDir
from loadkit.rundir.servercauses import read_server_causes

PROFILE = """
name: own-tls
stages:
  - {name: steady, duration: 8s, rate: 20/s}
users: {accounts: 30}
network:
  - {name: wifi, weight: 50}
  - {name: weak-4g, weight: 50, latency: 20ms}
journeys:
  - {wallet: balance, weight: 2}
  - {wallet: p2p_transfer, weight: 1, amount: {min: 1, max: 5}}
client: {timeout: 2s, retries: {attempts: 3, backoff: 200ms}}
"""

SCENARIO = """
name: crash-over-tls
steady_state:
  probes:
    - {name: ready, type: readyz, timeout: 1s}
    - {name: ledger, type: invariants}
faults:
  - {name: kill-wallet-1, type: process.crash, target: wallet-1, at: 2s, duration: 2s}
"""


def test_a_runs_own_stack_over_https_with_a_fault(tmp_path: Path) -> None:
    profile, scenario = tmp_path / "p.yaml", tmp_path / "s.yaml"
    profile.write_text(PROFILE)
    scenario.write_text(SCENARIO)
    options = RunOptions(
        profile=profile, chaos=scenario, own_stack=True, stack_tls=True, out=tmp_path / "r"
    )
    result = Runner(options).run()
    assert result.status == "completed", result.record.reason
    rd = RunDir(result.run_dir)
    ca = str(rd.stack / "ca.pem")
    target = json.loads(rd.run_config.read_text())["target"]
    assert target["tls"]["ca"] == ca
    urls = [*target["urls"], *target["network"]["weak-4g"]]
    assert all(u.startswith("https://") for u in urls)
    assert {target["tls_by_url"][u]["server_name"] for u in urls} == {"wallet-1", "wallet-2"}
    events = [json.loads(line) for line in rd.events.read_text().splitlines()[1:]]
    reverts = [e for e in events if e.get("event") == "revert.end"]
    assert reverts and all(e["result"] == "ok" for e in reverts), reverts  # restarted, ready
    totals = result.timeline.totals("request")
    assert totals.count("ok") > 100
    # every certificate verified: no TLS failure but while wallet-1 was down (its client
    # proxy takes the connection, then drops it: a handshake cut short)
    for t_from, t_to in ((0, 2), (6, 8)):
        quiet = result.timeline.select("request", t_from=t_from, t_to=t_to)
        assert quiet.count("ok") > 20 and "tls" not in quiet.detail, (t_from, quiet.detail)
    assert result.integrity is not None and result.integrity.ok is True
    assert not (rd.stack / "ca.key").exists(), "the stack and its keys went with the run"


def test_demo_tls_and_what_it_cannot_combine_with(tmp_path: Path) -> None:
    assert demo_options(tmp_path, tls=True).stack_tls
    assert not demo_options(tmp_path).stack_tls
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    with pytest.raises(ConfigError, match="only for a stack the run starts itself"):
        Runner(RunOptions(profile=profile, stack_tls=True, stack_dir=tmp_path / "x"))


MAINTENANCE = """
name: wallet-1-maintenance
faults:
  - {name: maint-1, type: wallet.maintenance, target: wallet-1, retry_after: 1s, at: 2s,
     duration: 3s}
"""


def test_over_https_the_breakdown_names_each_instance_and_server_causes_are_scraped(
    tmp_path: Path,
) -> None:
    profile, scenario = tmp_path / "p.yaml", tmp_path / "s.yaml"
    profile.write_text(PROFILE.replace("duration: 8s", "duration: 7s"))
    scenario.write_text(MAINTENANCE)
    options = RunOptions(
        profile=profile, chaos=scenario, own_stack=True, stack_tls=True, out=tmp_path / "r"
    )
    result = Runner(options).run()
    assert result.status == "completed", result.record.reason
    rd = RunDir(result.run_dir)
    target = json.loads(rd.run_config.read_text())["target"]
    assert all(u.startswith("https://") for u in target["network"]["weak-4g"])
    # the instances map names the wallets' client URLs; a class's proxy stands for one of them
    assert sorted(target["instances"].values()) == ["wallet-1", "wallet-2"]

    m = compute_metrics(rd.path)
    instances = m.breakdown("instance")
    assert instances is not None
    by = {r.value: r for r in instances.rows}
    assert sorted(by) == ["wallet-1", "wallet-2"], sorted(by)  # never a proxy's URL
    # requests: an action that met maintenance may have been retried on the other instance
    one, two = by["wallet-1"].request.counts, by["wallet-2"].request.counts
    assert one.causes.get("maintenance", 0) > 5 and two.busy == 0, (one, two)
    networks = m.breakdown("network")
    assert networks is not None and {r.value for r in networks.rows} == {"wifi", "weak-4g"}
    (fault,) = m.faults
    assert fault.hit == ["wallet-1"]

    # wallet-1 counted its own maintenance answers, read from its https /metrics
    found = read_server_causes(rd.server_causes)
    assert found is not None
    header, lines = found
    assert "wallet_busy_responses_total" in header["source"]
    counted = {x.instance: x.busy for x in lines}
    assert set(counted) == {"wallet-1"}, counted
    assert sum(x.busy.get("maintenance", 0) for x in lines) >= one.causes["maintenance"]
    assert m.server_causes is not None and m.server_causes.total.get("maintenance", 0) > 5
