"""``run-config.json`` and the Locust command lines built from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadkit.errors import ConfigError
from loadkit.load.runconfig import (
    LOCUSTFILE,
    RunConfig,
    Target,
    WalletTarget,
    data_files,
    locust_argv,
    run_profile,
    sent_profile,
)
from loadkit.load.tls import Tls

DOC_EXAMPLE = {
    "schema": "loadkit.run-config/v1",
    "run_id": "20261128-193000-double11",
    "run_dir": "/abs/path/reports/20261128-193000-double11",
    "profile_path": "/abs/path/profiles/double11.yaml",
    "time_scale": None,
    "workers": 2,
    "target": {
        "kind": "reference",
        "urls": ["http://127.0.0.1:41001", "http://127.0.0.1:41002"],
        "network": {"weak-4g": ["http://127.0.0.1:41101", "http://127.0.0.1:41102"]},
        "wallet": {
            "password": "wallet-pass",
            "users": [[2, "user00001"], [3, "user00002"]],
            "merchants": [[1002, "merchant00001"]],
        },
        "stack_dir": "/abs/.loadkit/stack",  # readers ignore keys they do not know
    },
    "drain_s": 10.0,
}


def test_the_documented_example_reads_and_writes_back(tmp_path: Path) -> None:
    config = RunConfig.from_dict(DOC_EXAMPLE)
    assert config.workers == 2 and config.drain_s == 10.0
    assert config.target.network["weak-4g"][1] == "http://127.0.0.1:41102"
    assert config.target.wallet == WalletTarget(
        "wallet-pass", ((2, "user00001"), (3, "user00002")), ((1002, "merchant00001"),)
    )
    path = config.write(tmp_path / "run-config.json")
    assert RunConfig.read(path) == config
    written = json.loads(path.read_text())
    assert "stack_dir" not in written["target"] and written["schema"] == DOC_EXAMPLE["schema"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": "loadkit.run-config/v0"}, "expected schema"),
        ({"target": {"urls": ["http://10.1.2.3:80"]}}, "is not on loopback"),
        ({"target": {"urls": ["http://example.com"]}}, "is not on loopback"),
        ({"target": {"urls": []}}, "target.urls is empty"),
        ({"target": {"urls": ["http://127.0.0.1:1"], "kind": "reference"}}, "wallet.users"),
        ({"drain_s": -1}, "drain_s"),
        ({"run_dir": None, "run_id": None, "profile_path": None, "target": None}, "malformed"),
    ],
)
def test_bad_configs_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict({**DOC_EXAMPLE, **change})


def test_loopback_names_are_accepted() -> None:
    for url in ("http://localhost:8080", "http://127.9.9.9", "http://[::1]:81"):
        RunConfig("r", "/d", "/p.yaml", Target(urls=(url,))).validate()


def test_locust_command_lines(tmp_path: Path) -> None:
    config = tmp_path / "run-config.json"
    common = ["-f", str(LOCUSTFILE), "--loadkit-config", str(config)]
    assert LOCUSTFILE.is_file()
    assert locust_argv(config) == [
        *common,
        *("--headless", "--only-summary", "-u", "1", "-r", "1"),
        *("--csv", str(tmp_path / "locust")),
    ]
    master = locust_argv(config, role="master", workers=3, master_port=6000)
    assert master[master.index("-u") + 1] == "3" and "--expect-workers" in master
    assert master[master.index("--master-bind-port") + 1] == "6000"
    assert locust_argv(config, role="worker", master_port=6000) == [
        *common,
        *("--worker", "--master-host", "127.0.0.1", "--master-port", "6000"),
    ]


PROFILE = """\
users: {accounts: 2}
data: {accounts: data/accounts.csv}
stages: [{name: a, duration: 10s, rate: 5}]
journeys:
  - {name: login, tags: [auth], http: [{path: "/login/{data.accounts.name}"}]}
  - {name: health, tags: [ops], http: [{path: /healthz}]}
"""
ACCOUNTS = "name\nalice\nbob\n"


def test_a_worker_runs_the_profile_it_was_sent_even_without_its_files(tmp_path: Path) -> None:
    here = tmp_path / "master"
    (here / "data").mkdir(parents=True)
    (here / "profile.yaml").write_text(PROFILE)
    (here / "data" / "accounts.csv").write_text(ACCOUNTS)
    config = RunConfig(
        run_id="r",
        run_dir=str(tmp_path / "run"),
        profile_path=str(here / "profile.yaml"),
        target=Target(urls=("http://127.0.0.1:1",)),
        time_scale=2.0,
        tags=("auth",),
    )
    assert RunConfig.from_dict(config.to_dict()) == config
    local = run_profile(config)
    assert [j.name for j in local.journeys] == ["login"] and local.duration_s == 20.0
    sent = data_files(local, here / "profile.yaml")
    assert sent == {"data/accounts.csv": ACCOUNTS}
    # a remote worker: the config names a path its machine does not have
    remote = RunConfig.from_dict({**config.to_dict(), "profile_path": "/nowhere/profile.yaml"})
    profile = sent_profile(remote, PROFILE, "profile.yaml", sent)
    assert profile.data[0].rows == (("alice",), ("bob",))
    assert [j.name for j in profile.journeys] == ["login"] and profile.duration_s == 20.0
    assert profile.source is not None and profile.source.endswith("/profile.yaml")


def test_tls_settings_travel_as_paths_on_disk_and_as_contents_to_workers(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    proxied = "https://127.0.0.1:41101"
    target = Target(
        urls=("https://127.0.0.1:8443", "http://127.0.0.1:8080"),
        network={"weak-4g": (proxied,)},
        tls=Tls(ca=str(ca)),
        tls_by_url={proxied: Tls(ca=str(ca), server_name="shop.test.internal")},
    )
    config = RunConfig("r", str(tmp_path), "/p.yaml", target)
    written = json.loads(config.write().read_text())
    assert written["target"]["tls"] == {"verify": True, "ca": str(ca)}
    assert written["target"]["tls_by_url"][proxied]["server_name"] == "shop.test.internal"
    assert RunConfig.read(tmp_path / "run-config.json") == config
    assert target.tls_for("http://127.0.0.1:8080") is None
    assert target.tls_for("https://127.0.0.1:8443") == Tls(ca=str(ca))
    assert target.tls_for(proxied) == Tls(ca=str(ca), server_name="shop.test.internal")
    assert [url for url, _ in target.all_tls()] == ["https://127.0.0.1:8443", proxied]
    wire = config.inlined().to_dict(inline=True)
    assert wire["target"]["tls"]["ca_pem"] == ca.read_text()
    worker = RunConfig.from_dict(wire)
    assert worker.target.tls_for(proxied) == Tls(
        ca=str(ca), server_name="shop.test.internal", ca_pem=ca.read_text()
    )
    insecure = Target(urls=("https://127.0.0.1:1", "https://127.0.0.1:2"), tls=Tls(verify=False))
    assert insecure.insecure_urls == ["https://127.0.0.1:1", "https://127.0.0.1:2"]
    assert Target(urls=("https://127.0.0.1:1",)).insecure_urls == []


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ({"tls": {"verify": False, "ca": "/ca.pem"}}, "TLS of https://127.0.0.1:1: ca is set"),
        ({"tls_by_url": {"https://127.0.0.1:9": {}}}, "tls_by_url has 'https://127.0.0.1:9'"),
        ({"tls": {"verify": "yes"}}, "malformed .*tls.verify must be true or false"),
    ],
)
def test_bad_tls_settings_are_refused(tls: dict[str, object], message: str) -> None:
    target = {"urls": ["https://127.0.0.1:1"], **tls}
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict({**DOC_EXAMPLE, "target": target})


def test_instances_name_target_urls_and_the_network_urls_standing_for_them(tmp_path: Path) -> None:
    target = Target(
        urls=("http://127.0.0.1:41001", "http://127.0.0.1:41002"),
        network={"weak-4g": ("http://127.0.0.1:41101", "http://127.0.0.1:41102")},
        instances={"http://127.0.0.1:41001": "wallet-1", "http://127.0.0.1:41002": "wallet-2"},
    )
    assert target.instance_of("http://127.0.0.1:41002") == "wallet-2"
    assert target.instance_of("http://127.0.0.1:41101") == "wallet-1"  # its class's proxy
    assert Target(urls=("http://127.0.0.1:8080",)).instance_of("http://127.0.0.1:8080") == (
        "http://127.0.0.1:8080"
    )
    config = RunConfig("r", str(tmp_path), str(tmp_path / "p.yaml"), target)
    back = RunConfig.read(config.write())
    assert back.target.instances == target.instances
