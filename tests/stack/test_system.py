"""System files: the shipped example validates, and every mistake is reported as
file:line:col with the field and what was expected — through the library and the real CLI
(exit 2, nothing started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadkit.errors import ConfigError
from loadkit.run.validate import validate_file
from loadkit.safety import Allowlist
from loadkit.spec import SpecError
from loadkit.stack.system import load_system
from tests.support import ROOT, loadkit

GOOD = """\
name: staging
allow: [shop.test.internal, 198.18.0.0/30]
services:
  shop:
    url: https://shop.test.internal:8443
    headers: {Authorization: "Bearer {env.SHOP_TOKEN}"}
  admin:
    urls: [http://127.0.0.1:9001, http://127.0.0.1:9002]
probes:
  - {name: up, url: "https://shop.test.internal:8443/healthz"}
"""


def test_the_shipped_example_validates() -> None:
    for path in sorted((ROOT / "systems").glob("*.yaml")):
        assert "system '" in validate_file(path)


def test_a_good_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "staging.yaml"
    path.write_text(GOOD)
    system = load_system(path)
    assert [s.name for s in system.services] == ["shop", "admin"]
    assert system.service().name == "shop" and system.service("admin").urls == (
        "http://127.0.0.1:9001",
        "http://127.0.0.1:9002",
    )
    assert system.allowlist.texts == ["shop.test.internal", "198.18.0.0/30"]
    with pytest.raises(ConfigError, match="SHOP_TOKEN"):
        system.service("shop").rendered_headers()
    monkeypatch.setenv("SHOP_TOKEN", "t0k")
    assert system.service("shop").rendered_headers() == {"Authorization": "Bearer t0k"}
    with pytest.raises(ConfigError, match="no service named 'shops'; did you mean 'shop'"):
        system.service("shops")


def test_a_system_checks_its_urls_against_the_allowlist(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "services:\n  shop: {url: 'http://198.18.0.2:8080'}\n"
        "probes:\n  - {name: up, url: 'http://198.18.0.6/healthz'}\n"
    )
    system = load_system(path)
    with pytest.raises(ConfigError, match=r"services\.shop: 198\.18\.0\.2 is not on loopback"):
        system.check(system.allowlist)
    allow = system.allowlist + Allowlist.parse(["198.18.0.0/30"])
    with pytest.raises(ConfigError, match=r"probes\.up: 198\.18\.0\.6 is not on loopback"):
        system.check(allow)
    system.check(allow + Allowlist.parse(["198.18.0.4/30"]))


HEAD = "services:\n  shop: {url: 'https://127.0.0.1:8443'}\n"

CHAOS = """\
name: shop
allow: [198.18.0.0/30]
services:
  shop: {url: 'http://198.18.0.2:8000'}
toxiproxy:
  url: http://198.18.0.2:8474
  proxies: [shop-db, "shop-cache-*"]
docker:
  labels: [com.docker.compose.project=shop, tier]
postgres:
  dsn: postgresql://chaos@198.18.0.2:5432/shop
  password_env: SHOP_PG_PASSWORD
commands:
  cache-off:
    inject: ./flags.sh set cache off
    revert: [./flags.sh, set, cache, "on"]
    check: [./flags.sh, is, cache, "on"]
    timeout: 5s
"""


def test_what_faults_may_touch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(CHAOS)
    system = load_system(path)
    assert system.toxiproxy is not None and system.toxiproxy.urls == ("http://198.18.0.2:8474",)
    assert system.toxiproxy.proxies == ("shop-db", "shop-cache-*")
    assert system.docker is not None and system.docker.engine == "unix:///var/run/docker.sock"
    assert system.docker.labels == ("com.docker.compose.project=shop", "tier")
    assert system.docker.remote_host is None
    (command,) = system.commands
    assert command.inject == ("./flags.sh", "set", "cache", "off")
    assert command.check == ("./flags.sh", "is", "cache", "on")
    assert command.timeout_s == 5.0 and command.cwd == str(tmp_path)
    assert system.postgres is not None and system.postgres.where == "198.18.0.2:5432/shop"
    monkeypatch.delenv("SHOP_PG_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="SHOP_PG_PASSWORD is not set"):
        system.postgres.resolved_dsn()
    monkeypatch.setenv("SHOP_PG_PASSWORD", "p@ss/word")
    assert system.postgres.resolved_dsn() == "postgresql://chaos:p%40ss%2Fword@198.18.0.2:5432/shop"
    system.check(system.allowlist)  # every address is in 198.18.0.0/30
    assert "faults on: toxiproxy" in validate_file(path) and "commands cache-off" in (
        validate_file(path)
    )


def test_the_sections_addresses_must_be_allowed(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "services:\n  shop: {url: 'http://127.0.0.1:8000'}\n"
        "toxiproxy: {url: 'http://198.18.0.6:8474', proxies: [a]}\n"
        "docker: {engine: 'tcp://198.18.0.10:2375', labels: [app=shop]}\n"
        "postgres: {dsn: 'postgresql://chaos@198.18.0.14/shop'}\n"
    )
    system = load_system(path)
    with pytest.raises(ConfigError, match=r"toxiproxy: 198\.18\.0\.6 is not on loopback"):
        system.check(system.allowlist)
    allow = Allowlist.parse(["198.18.0.4/30"])
    with pytest.raises(ConfigError, match=r"docker\.engine: 198\.18\.0\.10 is not on loopback"):
        system.check(allow)
    allow = allow + Allowlist.parse(["198.18.0.8/30"])
    with pytest.raises(ConfigError, match=r"postgres\.dsn: 198\.18\.0\.14 is not on loopback"):
        system.check(allow)
    system.check(allow + Allowlist.parse(["198.18.0.12/30"]))


MISTAKES = {
    "no services": ("name: x\n", ["1:1: services: missing required key 'services'"]),
    "misspelt top-level key": (
        HEAD + "alow: [10.0.0.1]\n",
        ["3:1: alow: unknown key 'alow'; did you mean 'allow'?"],
    ),
    "services not a mapping": (
        "services: [https://x]\n",
        ["1:11: services: expected services by name"],
    ),
    "no service at all": ("services: {}\n", ["1:11: services: expected at least one service"]),
    "a bad service name": (
        "services:\n  Shop API: {url: 'http://127.0.0.1:1'}\n",
        ["2:3: services[\"Shop API\"]: service name 'Shop API': lower-case letters"],
    ),
    "a service without a URL": (
        "services:\n  shop: {headers: {X-A: b}}\n",
        ["2:9: services.shop: a service needs 'url' (or 'urls')"],
    ),
    "url and urls": (
        "services:\n  shop: {url: 'http://127.0.0.1:1', urls: ['http://127.0.0.1:2']}\n",
        ["2:43: services.shop.urls: give 'url' (one) or 'urls' (several), not both"],
    ),
    "not http": (
        "services:\n  shop: {url: 'ftp://127.0.0.1'}\n",
        ["2:15: services.shop.url: expected an http:// or https:// URL"],
    ),
    "a bad port": (
        "services:\n  shop: {url: 'http://127.0.0.1:99999'}\n",
        ["2:15: services.shop.url: expected a URL like"],
    ),
    "credentials in the URL": (
        "services:\n  shop: {url: 'https://u:p@127.0.0.1'}\n",
        ["2:15: services.shop.url: a base URL has no query, fragment or credentials"],
    ),
    "an empty urls list": (
        "services:\n  shop: {urls: []}\n",
        ["2:16: services.shop.urls: expected at least one URL, got an empty list"],
    ),
    "a missing CA file": (
        "services:\n  shop:\n    url: https://127.0.0.1:8443\n    tls: {ca: nope.pem}\n",
        ["4:15: services.shop.tls.ca: no such file:"],
    ),
    "a misspelt tls key": (
        "services:\n  shop:\n    url: https://127.0.0.1:8443\n    tls: {verfy: false}\n",
        ["4:11: services.shop.tls.verfy: unknown key 'verfy'; did you mean 'verify'?"],
    ),
    "verify not a boolean": (
        "services:\n  shop:\n    url: https://127.0.0.1:8443\n    tls: {verify: sometimes}\n",
        ["4:19: services.shop.tls.verify: expected true or false"],
    ),
    "tls on a plain http service": (
        "services:\n  shop:\n    url: http://127.0.0.1:8080\n    tls: {verify: false}\n",
        ["4:10: services.shop.tls: tls settings on a service with no https:// URL"],
    ),
    "a bad server name": (
        "services:\n  shop:\n    url: https://127.0.0.1:8443\n    tls: {server_name: 'a b'}\n",
        ["4:24: services.shop.tls.server_name: expected a host name"],
    ),
    "a header the system may not set": (
        "services:\n  shop:\n    url: http://127.0.0.1:1\n    headers: {Host: evil}\n",
        ["4:15: services.shop.headers.Host: 'Host' is not a header a system may set"],
    ),
    "a header with a per-request variable": (
        "services:\n  shop:\n    url: http://127.0.0.1:1\n    headers: {X-Id: '{user.id}'}\n",
        ["4:21: services.shop.headers.X-Id: a system's headers may use {env.NAME} only"],
    ),
    "a header with a lone brace": (
        "services:\n  shop:\n    url: http://127.0.0.1:1\n    headers: {X-A: 'a{b'}\n",
        ["4:20: services.shop.headers.X-A: a lone '{'"],
    ),
    "a bad allow entry": (
        HEAD + "allow: [0.0.0.0/0]\n",
        ["3:9: allow[0]: '0.0.0.0/0' allows every address"],
    ),
    "allow not a list": (
        HEAD + "allow: 10.0.0.1\n",
        ["3:8: allow: expected a list of hosts, addresses, networks or *.suffixes"],
    ),
    "a probe without a url": (
        HEAD + "probes:\n  - {name: up}\n",
        ["4:5: probes[0].url: missing required key 'url' in this probe"],
    ),
    "a probe status out of range": (
        HEAD + "probes:\n  - {name: up, url: 'http://127.0.0.1/h', status: 700}\n",
        ["4:51: probes[0].status: expected a whole number from 100 to 599, got 700"],
    ),
    "two probes with one name": (
        HEAD
        + "probes:\n  - {name: up, url: 'http://127.0.0.1/a'}\n"
        + "  - {name: up, url: 'http://127.0.0.1/b'}\n",
        ["5:12: probes[1].name: probe name 'up' is used twice"],
    ),
    "toxiproxy without a URL": (
        HEAD + "toxiproxy: {proxies: [a]}\n",
        ["3:12: toxiproxy: name the Toxiproxy API"],
    ),
    "toxiproxy without proxies": (
        HEAD + "toxiproxy: {url: 'http://127.0.0.1:8474'}\n",
        ["3:12: toxiproxy.proxies: missing required key 'proxies'"],
    ),
    "a toxiproxy API over https": (
        HEAD + "toxiproxy: {url: 'https://127.0.0.1:8474', proxies: [a]}\n",
        ["3:18: toxiproxy.url: expected the Toxiproxy API as http://HOST:PORT"],
    ),
    "url and urls for toxiproxy": (
        HEAD + "toxiproxy: {url: 'http://a:1', urls: ['http://b:1'], proxies: [a]}\n",
        ["3:38: toxiproxy.urls: give 'url' (one server) or 'urls' (several), not both"],
    ),
    "a bad proxy pattern": (
        HEAD + "toxiproxy: {url: 'http://127.0.0.1:8474', proxies: ['a b']}\n",
        ["3:53: toxiproxy.proxies[0]: expected a proxy name or a pattern"],
    ),
    "docker without labels": (
        HEAD + "docker: {engine: 'unix:///var/run/docker.sock'}\n",
        ["3:9: docker.labels: missing required key 'labels'"],
    ),
    "an empty label selector": (
        HEAD + "docker: {labels: []}\n",
        ["3:18: docker.labels: expected at least one label, got an empty list"],
    ),
    "a bad engine": (
        HEAD + "docker: {engine: 'http://docker:2375', labels: [a=b]}\n",
        ["3:18: docker.engine: expected unix:///var/run/docker.sock or tcp://HOST:PORT"],
    ),
    "a bad label": (
        HEAD + "docker: {labels: ['a b=c']}\n",
        ["3:19: docker.labels[0]: expected a label like com.docker.compose.project=shop"],
    ),
    "a password in the DSN": (
        HEAD + "postgres: {dsn: 'postgresql://chaos:secret@127.0.0.1/shop'}\n",
        ["3:17: postgres.dsn: a DSN in a system file has no password"],
    ),
    "a DSN without a database": (
        HEAD + "postgres: {dsn: 'postgresql://chaos@127.0.0.1'}\n",
        ["3:17: postgres.dsn: expected a URL DSN like"],
    ),
    "a bad password variable": (
        HEAD + "postgres: {dsn: 'postgresql://c@127.0.0.1/s', password_env: 'MY-PW'}\n",
        ["3:61: postgres.password_env: expected an environment variable's name"],
    ),
    "a command without a revert": (
        HEAD + "commands:\n  flag: {inject: [touch, x]}\n",
        ["4:9: commands.flag.revert: missing required key 'revert'"],
    ),
    "a command that is not a command": (
        HEAD + "commands:\n  flag: {inject: {a: b}, revert: [rm, x]}\n",
        ["4:18: commands.flag.inject: expected a command as a list of words"],
    ),
    "an empty command": (
        HEAD + "commands:\n  flag: {inject: '', revert: [rm, x]}\n",
        ["4:18: commands.flag.inject: expected a command, got an empty one"],
    ),
    "a bad command name": (
        HEAD + "commands:\n  Flag Off: {inject: [touch, x], revert: [rm, x]}\n",
        ["4:3: commands[\"Flag Off\"]: command name 'Flag Off'"],
    ),
    "a bad command timeout": (
        HEAD + "commands:\n  flag: {inject: [touch, x], revert: [rm, x], timeout: soon}\n",
        ["4:56: commands.flag.timeout: expected a duration"],
    ),
    "commands not a mapping": (
        HEAD + "commands: [touch]\n",
        ["3:11: commands: expected commands by name"],
    ),
    "an integrity block with neither sql nor http": (
        HEAD + "integrity: {}\n",
        ["3:12: integrity: give exactly one of 'sql' (a query) or 'http' (a URL)"],
    ),
    "a system name with capitals": (
        "name: Shop\n" + HEAD,
        ["1:7: name: expected lower-case letters, digits, '-' and '_'"],
    ),
    "a service URL with a query": (
        "services:\n  shop: {url: 'https://127.0.0.1/?a=1'}\n",
        ["2:15: services.shop.url: a base URL has no query, fragment or credentials"],
    ),
    "a client certificate without its key": (  # c.pem exists (the test writes it)
        "services:\n  shop:\n    url: https://127.0.0.1:8443\n    tls: {cert: c.pem}\n",
        ["4:17: services.shop.tls.cert: a client certificate needs both 'cert' and 'key'"],
    ),
    "verify off with a CA": (
        "services:\n  shop:\n    url: https://127.0.0.1:8443\n"
        "    tls: {ca: c.pem, verify: false}\n",
        ["4:30: services.shop.tls.verify: verify: false ignores the 'ca' given"],
    ),
    "a header value with a line break": (
        'services:\n  shop:\n    url: http://127.0.0.1:1\n    headers: {X-A: "a\\nb"}\n',
        ["4:20: services.shop.headers.X-A: a header value cannot contain a line break"],
    ),
    "a metrics block with mistakes": (
        "services:\n  shop:\n    url: http://127.0.0.1:8080\n"
        "    metrics: {url: 'ftp://x', metric: 'not a name', colour: red}\n",
        [
            "4:20: services.shop.metrics.url: expected a URL like",
            "4:39: services.shop.metrics.metric: expected a Prometheus metric or label name",
            "4:53: services.shop.metrics.colour: unknown key 'colour'",
        ],
    ),
    "a probe timeout without its unit": (
        HEAD + "probes:\n  - {name: up, url: 'http://127.0.0.1/h', timeout: 5}\n",
        ["4:52: probes[0].timeout: expected a duration like '90s'"],
    ),
    "toxiproxy on port 0": (
        HEAD + "toxiproxy: {url: 'http://127.0.0.1:0', proxies: [a]}\n",
        ["3:18: toxiproxy.url: expected the Toxiproxy API as http://HOST:PORT"],
    ),
    "a toxiproxy URL with a path": (
        HEAD + "toxiproxy: {url: 'http://127.0.0.1:8474/api', proxies: [a]}\n",
        ["3:18: toxiproxy.url: expected http://HOST:PORT with nothing after it"],
    ),
    "a remote engine without a port": (
        HEAD + "docker: {engine: 'tcp://docker.internal', labels: [a=b]}\n",
        ["3:18: docker.engine: expected unix:///var/run/docker.sock or tcp://HOST:PORT"],
    ),
    "an unknown key in the docker block": (
        HEAD + "docker: {labels: [a=b], network: host}\n",
        ["3:25: docker.network: unknown key 'network' (expected one of: labels, engine)"],
    ),
    "a password in the DSN's query": (
        HEAD + "postgres: {dsn: 'postgresql://c@127.0.0.1/s?password=x'}\n",
        ["3:17: postgres.dsn: a DSN in a system file has no password"],
    ),
    "an unknown key in a command": (
        HEAD + "commands:\n  flag: {inject: [touch, x], revert: [rm, x], shell: true}\n",
        ["4:47: commands.flag.shell: unknown key 'shell'"],
    ),
    "a word of a command that is a mapping": (
        HEAD + "commands:\n  flag: {inject: [touch, {a: b}], revert: [rm, x]}\n",
        ["4:18: commands.flag.inject: expected a command as a list of words"],
    ),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_mistakes_are_reported_with_their_place(tmp_path: Path, case: str) -> None:
    text, expected = MISTAKES[case]
    path = tmp_path / "system.yaml"
    path.write_text(text)
    (tmp_path / "c.pem").write_text("a certificate file that exists\n")
    with pytest.raises(SpecError) as caught:
        load_system(path)
    lines = [str(p).removeprefix(f"{path}:") for p in caught.value.problems]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)


def test_every_mistake_through_the_cli_exits_2(tmp_path: Path) -> None:
    """One file with several mistakes: every one reported, exit 2, nothing written."""
    path = tmp_path / "system.yaml"
    path.write_text(
        "services:\n  shop:\n    url: ftp://x\n    tls: {verfy: no}\nallow: [0.0.0.0/0]\n"
    )
    run = loadkit("validate", str(path), cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3, run.stderr
    assert f"{path}:3:10: services.shop.url" in run.stderr
    assert list(tmp_path.iterdir()) == [path]


def test_a_service_names_where_its_busy_causes_can_be_scraped(tmp_path: Path) -> None:
    from loadkit.run.servercauses import system_endpoints
    from loadkit.stack.system import DEFAULT_BUSY_METRIC

    path = tmp_path / "system.yaml"
    path.write_text(
        "services:\n"
        "  shop:\n    url: http://127.0.0.1:8080\n    metrics: http://127.0.0.1:9100/metrics\n"
        "  pay:\n    url: http://127.0.0.1:8081\n    metrics:\n"
        "      url: http://127.0.0.1:9090/federate\n      metric: pay_rejected_total\n"
        "      cause_label: reason\n      instance_label: pod\n"
    )
    system = load_system(path)
    shop, pay = system.services
    assert shop.metrics is not None and shop.metrics.metric == DEFAULT_BUSY_METRIC
    assert pay.metrics is not None and pay.metrics.instance_label == "pod"
    assert [(e.instance, e.metric, e.cause_label) for e in system_endpoints(system)] == [
        ("shop", DEFAULT_BUSY_METRIC, "cause"),
        ("pay", "pay_rejected_total", "reason"),
    ]
    path.write_text(
        "services:\n  shop:\n    url: http://127.0.0.1:8080\n"
        "    metrics: {url: 'ftp://x', metric: 'not a name', colour: red}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_system(path)
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "services.shop.metrics.url" in text and "services.shop.metrics.metric" in text
    assert "services.shop.metrics.colour" in text
