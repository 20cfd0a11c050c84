"""The wallet's contract with its clients: what the server answers is what the contract says,
and importing the contract (or anything a run or a chaos command imports) never loads the
server: no Starlette, uvicorn, asyncpg-backed wallet modules or prometheus_client."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import loadkit.wallet
from loadkit.capacity.model import WALLET_CAUSE_GROUPS
from loadkit.profile.outcome import MAINTENANCE_HEADER, maintenance_marked
from loadkit.wallet.app import create_app
from loadkit.wallet.config import WalletConfig
from loadkit.wallet.contract import (
    BUSY_CODE,
    BusyCause,
    Endpoint,
    merchant_name,
    user_name,
)
from loadkit.wallet.contract import (
    MAINTENANCE_HEADER as WALLET_MAINTENANCE_HEADER,
)
from loadkit.wallet.runtime import WalletRuntime
from tests.support import ROOT

CONFIG = WalletConfig(dsn="postgresql://x@127.0.0.1:1/w", secret="s", admin_token="a")
#: modules only the reference wallet's server needs (the `stack` extra)
SERVER_MODULES = ("starlette", "uvicorn", "uvloop", "httptools", "prometheus_client")


def _server_modules_after(code: str) -> list[str]:
    """The server modules (and wallet modules beyond the contract) loaded by ``code`` in a
    fresh interpreter."""
    probe = textwrap.dedent(code) + textwrap.dedent(
        """
        import sys
        server = [m for m in sys.modules if m.split(".")[0] in SERVER]
        wallet = [
            m for m in sys.modules
            if m.startswith("loadkit.wallet.") and m != "loadkit.wallet.contract"
        ]
        print(",".join(sorted(server + wallet)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", f"SERVER = {SERVER_MODULES!r}\n{probe}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"},
    )
    return [m for m in done.stdout.strip().split(",") if m]


def test_a_run_and_the_chaos_commands_never_import_the_server() -> None:
    assert _server_modules_after("import loadkit.wallet.contract") == []
    assert _server_modules_after("import loadkit.chaos.faults.wallet") == []
    run = "import loadkit.run.orchestrator, loadkit.chaos, loadkit.cli.main"
    assert _server_modules_after(run) == []


def test_chaos_list_never_imports_the_server() -> None:
    code = """
        import contextlib, io
        from loadkit.cli.main import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            assert main(["chaos", "list"]) == 0
        assert "wallet.maintenance" in out.getvalue()
    """
    assert _server_modules_after(code) == []


def test_the_package_resolves_its_names_on_first_use() -> None:
    for name in loadkit.wallet.__all__:
        assert getattr(loadkit.wallet, name) is not None, name
    assert sorted(loadkit.wallet.__all__) == loadkit.wallet.__all__


def test_every_endpoint_is_a_route_of_the_server() -> None:
    app = create_app(CONFIG)
    routes = {getattr(r, "path", None) for r in app.routes}
    assert {e.value for e in Endpoint} <= routes


def test_busy_answers_say_what_the_contract_says() -> None:
    assert BusyCause.RATE_LIMITED.status == BusyCause.USER_RATE_LIMITED.status == 429
    assert {c.status for c in BusyCause} == {429, 503}
    assert WALLET_CAUSE_GROUPS["db_pool_timeout"] == "pool wait"
    assert set(WALLET_CAUSE_GROUPS) == {c.value for c in BusyCause}

    rt = WalletRuntime(CONFIG)
    busy = rt.maintenance_busy()
    assert busy.status == 503 and busy.code == BUSY_CODE
    assert busy.body()["cause"] == BusyCause.MAINTENANCE
    # the one maintenance detector reads the header the wallet sends
    assert MAINTENANCE_HEADER == WALLET_MAINTENANCE_HEADER
    assert maintenance_marked(busy.headers[MAINTENANCE_HEADER], None)


def test_seeded_names() -> None:
    assert (user_name(1), merchant_name(12)) == ("user00001", "merchant00012")
