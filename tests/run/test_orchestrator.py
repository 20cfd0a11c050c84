"""The run orchestrator's input checks and run directory (the end-to-end runs are in
test_run_e2e.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadkit.errors import ConfigError
from loadkit.run.orchestrator import Runner, RunOptions, parse_targets, read_locust_totals
from loadkit.rundir.record import RunRecord, new_run_dir, read_json, write_json

ROOT = Path(__file__).parents[2]
PROFILES = ROOT / "profiles"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("http://10.0.0.5:8080", "10.0.0.5 is not on loopback"),
        ("http://192.168.1.2", "192.168.1.2 is not on loopback"),
        ("https://example.com", "example.com is not on loopback"),
        ("ftp://127.0.0.1:21", "is not an http(s) URL"),
        ("127.0.0.1:8080", "is not an http(s) URL"),
        (" , ", "expected a URL"),
    ],
)
def test_targets_must_be_loopback_http(target: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_targets(target)


def test_loopback_targets_are_accepted() -> None:
    assert parse_targets("http://127.0.0.1:8080/, http://localhost:9000,http://[::1]:81") == [
        "http://127.0.0.1:8080",
        "http://localhost:9000",
        "http://[::1]:81",
    ]


def test_bad_profile_is_rejected_before_anything_starts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "stages:\n  - name: a\n    duration: 5\n    rate: 1\njourneys:\n  - wallet: balance\n"
    )
    out = tmp_path / "reports"
    with pytest.raises(ConfigError, match=r"bad.yaml:3:15: stages\[0\].duration"):
        Runner(RunOptions(profile=bad, out=out), None)
    assert not out.exists(), "no run directory for a run that never started"


def test_wallet_journeys_need_the_reference_stack(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="reference-wallet journeys"):
        Runner(RunOptions(profile=PROFILES / "smoke.yaml", target="http://127.0.0.1:9"), None)


def test_time_scale_override_and_worker_bounds(tmp_path: Path) -> None:
    runner = Runner(RunOptions(profile=PROFILES / "diurnal.yaml", time_scale=0.001), None)
    assert runner.profile.duration_s == pytest.approx(86.4)
    with pytest.raises(ConfigError, match="--workers"):
        Runner(RunOptions(profile=PROFILES / "smoke.yaml", workers=-1), None)


def test_run_dirs_are_unique_and_run_json_is_complete(tmp_path: Path) -> None:
    a, b = new_run_dir(tmp_path, "double 11/x"), new_run_dir(tmp_path, "double 11/x")
    assert a != b and a.name.endswith("double-11-x") and b.name.endswith("-1")
    record = RunRecord(run_id=a.name, command=["loadkit", "run"], profile={"name": "x"}, target={})
    write_json(a / "run.json", record.to_dict())
    data = read_json(a / "run.json")
    assert data["schema"] == "loadkit.run/v1" and data["status"] == "running"
    assert data["loadkit_version"] and data["started_at_iso"].endswith("Z")
    assert not list(a.glob(".run.json-*")), "no temp file left behind"


def test_locust_totals_come_from_the_aggregated_row(tmp_path: Path) -> None:
    csv = tmp_path / "locust_stats.csv"
    csv.write_text(
        "Type,Name,Request Count,Failure Count\n"
        "POST,/v1/transfers,90,3\nGET,/v1/balance,10,0\n,Aggregated,100,3\n"
    )
    assert read_locust_totals(csv) == {"requests": 100, "failures": 3}
    assert read_locust_totals(tmp_path / "none.csv") == {}
    json.dumps(read_locust_totals(csv))


def test_tags_select_journeys_before_anything_starts(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "name: tagged\nstages:\n  - {name: s, duration: 2s, rate: 5/s}\njourneys:\n"
        "  - {name: pay, tags: [payments], http: [{path: /pay}]}\n"
        "  - {name: browse, tags: [browse], http: [{path: /}]}\n"
    )
    runner = Runner(RunOptions(profile=profile, target="http://127.0.0.1:9", tags=("payments",)))
    assert [j.name for j in runner.profile.journeys] == ["pay"]
    runner = Runner(
        RunOptions(profile=profile, target="http://127.0.0.1:9", exclude_tags=("payments",))
    )
    assert [j.name for j in runner.profile.journeys] == ["browse"]
    with pytest.raises(ConfigError, match="payment"):
        Runner(RunOptions(profile=profile, target="http://127.0.0.1:9", tags=("payment",)))


def test_a_system_says_where_load_goes_so_target_is_refused_with_it(tmp_path: Path) -> None:
    """``--system`` and ``--target`` both say where load goes: one of them, before anything
    starts; ``--target --chaos`` alone points at ``--system`` (faults need components)."""
    system = tmp_path / "shop.yaml"
    system.write_text("services:\n  shop: {url: 'http://127.0.0.1:9'}\n")
    profile = tmp_path / "shop.profile.yaml"
    profile.write_text(
        "stages:\n  - {name: s, duration: 5s, rate: 1/s}\n"
        "journeys:\n  - {name: home, http: [{name: home, path: /}]}\n"
    )
    out = tmp_path / "reports"
    with pytest.raises(ConfigError, match="--system and --target both say where load goes"):
        Runner(RunOptions(profile=profile, system=system, target="http://127.0.0.1:9", out=out))
    scenario = ROOT / "chaos" / "staging-gameday.yaml"
    with pytest.raises(ConfigError, match="use --system FILE instead of --target"):
        Runner(RunOptions(profile=profile, target="http://127.0.0.1:9", chaos=scenario, out=out))
    assert not out.exists()
    Runner(RunOptions(profile=profile, system=system, out=out))  # the system alone is fine


def test_loadkits_own_requests_verify_with_the_services_tls(tmp_path: Path) -> None:
    """An https integrity, probe or metrics URL is checked with the TLS of the system's service
    on the same host and port, else on the same host (a metrics port beside the service), else
    with the system's trust store."""
    import ssl

    import trustme

    from tests.netns import issue

    ca = issue(trustme.CA(), tmp_path / "tls", "127.0.0.1").ca
    system = tmp_path / "shop.yaml"
    system.write_text(f"services:\n  shop: {{url: 'https://127.0.0.1:8443', tls: {{ca: {ca}}}}}\n")
    profile = tmp_path / "shop.profile.yaml"
    profile.write_text(
        "stages:\n  - {name: s, duration: 5s, rate: 1/s}\n"
        "journeys:\n  - {name: home, http: [{name: home, path: /}]}\n"
    )
    runner = Runner(RunOptions(profile=profile, system=system, out=tmp_path / "reports"))
    for url in ("https://127.0.0.1:8443/applied", "https://127.0.0.1:9100/metrics"):
        context = runner.verify_for(url)
        assert isinstance(context, ssl.SSLContext), url
        assert context.cert_store_stats()["x509_ca"] == 1, url  # the service's CA only
    assert runner.verify_for("https://127.0.0.2:9100/metrics") is True
    assert runner.verify_for("http://127.0.0.1:9100/metrics") is True
