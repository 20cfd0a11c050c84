"""Safe by default: one allowlist and one loopback check, by address (loadkit/safety.py), and
every place a run reaches out goes through it before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadkit.errors import ConfigError
from loadkit.safety import Allowlist, dsn_hosts, is_loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("127.evil.com", False),  # a name like any other, whatever it starts with
        ("127.0.0.1.nip.io", False),
        ("10.0.0.5", False),
        ("198.18.0.2", False),
        ("0.0.0.0", False),
        ("::ffff:10.0.0.1", False),
    ],
)
def test_is_loopback_goes_by_address(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("dsn", "hosts"),
    [
        ("postgresql:///db?host=10.0.0.5", ["10.0.0.5"]),
        ("postgresql://u:p@127.0.0.1:5432/db", ["127.0.0.1"]),
        ("postgresql://a:1,b:2/db", ["a", "b"]),
        ("postgresql://[::1]:5432/db", ["::1"]),
        ("postgresql://u@127.0.0.1/db?hostaddr=10.9.9.9", ["127.0.0.1", "10.9.9.9"]),
        ("host=/tmp dbname=x", ["/tmp"]),
        ("host=10.0.0.7 port=5432 dbname=x", ["10.0.0.7"]),
    ],
)
def test_every_host_a_dsn_names(dsn: str, hosts: list[str]) -> None:
    assert dsn_hosts(dsn) == hosts


def test_the_dsn_holes_are_closed() -> None:
    loopback_only = Allowlist()
    for dsn in (
        "postgresql:///db?host=10.0.0.5",
        "postgresql://u@127.0.0.1/db?hostaddr=10.9.9.9",
        "host=10.0.0.7 dbname=x",
    ):
        with pytest.raises(ConfigError, match="not on loopback and not allowed"):
            loopback_only.check_dsn(dsn, what="--pg-dsn")
    assert loopback_only.check_dsn("host=/var/run/postgresql dbname=x", what="dsn") == []


def test_a_refusal_says_what_and_how() -> None:
    with pytest.raises(ConfigError) as err:
        Allowlist().check_url("http://198.18.0.2:8080", what="--target")
    message = err.value.message
    assert message.startswith("--target: 198.18.0.2 is not on loopback and not allowed")
    assert "--allow 198.18.0.2" in message and "127.0.0.0/8, ::1, localhost" in message


def test_addresses_networks_and_suffixes() -> None:
    allow = Allowlist.parse(["198.18.0.0/30", "198.19.7.7", "*.test.internal", "api.shop.test"])
    assert allow.check_url("https://198.18.0.2:8443/x", what="t").addresses == ("198.18.0.2",)
    allow.check_url("http://198.19.7.7", what="t")
    with pytest.raises(ConfigError, match=r"198\.18\.0\.9 is not on loopback"):
        allow.check_url("http://198.18.0.9", what="t")
    # an allowed name must still resolve, and only to allowed addresses
    with pytest.raises(ConfigError, match="does not resolve"):
        allow.check_url("http://nowhere.test.internal", what="t")
    with pytest.raises(ConfigError, match="not on loopback and not allowed"):
        allow.check_url("http://test.internal", what="t")  # the suffix, not a name under it


def test_a_name_must_point_where_it_was_allowed() -> None:
    """A name allowed by an entry is refused the day it resolves outside the allowed
    addresses (a fixed resolver table stands in for DNS here; the namespace tests use real
    addresses)."""
    dns = {
        "shop.test.internal": ("198.18.0.2",),
        "moved.test.internal": ("198.18.0.2", "10.20.30.40"),
        "sneaky.example": ("127.0.0.1",),
    }
    allow = Allowlist(
        Allowlist.parse(["*.test.internal", "198.18.0.0/30"]).entries,
        resolver=lambda host: dns.get(host, ()),
    )
    assert allow.check_host("shop.test.internal", what="t").addresses == ("198.18.0.2",)
    with pytest.raises(ConfigError) as err:
        allow.check_host("moved.test.internal", what="--target")
    assert "resolves to 198.18.0.2, 10.20.30.40" in err.value.message
    assert "--allow 10.20.30.40" in err.value.message
    # a name that resolves only to loopback is loopback, whatever it is called
    assert allow.check_host("sneaky.example", what="t").addresses == ("127.0.0.1",)
    assert Allowlist().check_host("localhost", what="t").addresses


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("", "an empty entry"),
        ("0.0.0.0/0", "allows every address"),
        ("::/0", "allows every address"),
        ("*.", "SUFFIX"),
        ("http://shop.test", "not a host name"),
        ("shop test", "not a host name"),
        ("10.0.0.0/33", "not a host name"),
    ],
)
def test_bad_allow_entries(entry: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Allowlist.parse([entry], source="--allow")


PROFILE = """
name: allow
stages:
  - {name: steady, duration: 2s, rate: 5/s}
journeys:
  - name: health
    http:
      - {name: health, path: /healthz}
"""


def test_a_run_checks_every_url_it_will_reach_before_anything_starts(tmp_path: Path) -> None:
    from loadkit.run.orchestrator import Runner, RunOptions

    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE + "integrity:\n  http: {url: 'http://10.1.2.3/applied'}\n")
    out = tmp_path / "reports"
    with pytest.raises(ConfigError, match=r"integrity\.http\.url: 10\.1\.2\.3 is not on loopback"):
        Runner(RunOptions(profile=profile, target="http://127.0.0.1:9", out=out))
    Runner(RunOptions(profile=profile, target="http://127.0.0.1:9", out=out, allow=("10.1.2.3",)))
    profile.write_text(PROFILE)
    with pytest.raises(ConfigError, match=r"--target: 198\.18\.0\.2 is not on loopback"):
        Runner(RunOptions(profile=profile, target="http://198.18.0.2:8080", out=out))
    with pytest.raises(ConfigError, match="--allow: 'http://x' is not a host name"):
        Runner(RunOptions(profile=profile, target="http://127.0.0.1:9", allow=("http://x",)))
    assert not out.exists(), "nothing was started or written"
