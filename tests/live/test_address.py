"""--web / --metrics addresses: loopback by default, elsewhere only when allowed, with a token."""

from __future__ import annotations

import pytest

from loadkit.errors import ConfigError
from loadkit.live.address import parse_listen
from loadkit.safety import Allowlist


def test_a_port_alone_is_loopback_without_a_token() -> None:
    listen = parse_listen("8089", Allowlist(), what="--web")
    assert (listen.host, listen.port, listen.token) == ("127.0.0.1", 8089, None)
    assert listen.url() == "http://127.0.0.1:8089/" and listen.accepts(None)


def test_another_address_needs_the_allowlist_and_then_a_token() -> None:
    with pytest.raises(ConfigError, match=r"--web: 198\.18\.0\.1 is not on loopback"):
        parse_listen("198.18.0.1:8089", Allowlist(), what="--web")
    listen = parse_listen("198.18.0.1:8089", Allowlist.parse(["198.18.0.0/30"]), what="--web")
    assert listen.token and f"?token={listen.token}" in listen.url()
    assert listen.accepts(listen.token) and not listen.accepts(None)
    assert not listen.accepts("x" + listen.token)


def test_every_interface_must_be_meant() -> None:
    with pytest.raises(ConfigError, match="listens on every interface"):
        parse_listen("0.0.0.0:9464", Allowlist.parse(["198.18.0.0/30"]), what="--metrics")
    assert parse_listen("0.0.0.0:9464", Allowlist.parse(["0.0.0.0"]), what="--metrics").token


@pytest.mark.parametrize("text", ["", "web", "70000", "127.0.0.1:", "::1:80", "[::1]80"])
def test_bad_addresses_are_usage_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="--web"):
        parse_listen(text, Allowlist(), what="--web")


def test_ipv6_loopback_in_brackets() -> None:
    listen = parse_listen("[::1]:0", Allowlist(), what="--web")
    assert (
        listen.host == "::1" and listen.token is None and listen.url(8000) == "http://[::1]:8000/"
    )
