"""Fixtures for chaos tests: the session's real reference stack, a fault environment on it, and
a check after every test that broke something that all of it was put back.

Every test here that uses the stack must leave it as it found it; the ``restored`` check below
fails the test that did not (after repairing the stack, so the next test starts clean).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from loadkit.chaos.env import StackEnv
from loadkit.chaos.faults.base import ChaosEnv
from loadkit.chaos.faults.postgres import run_sql
from loadkit.stack.manifest import StackManifest
from loadkit.stack.reference import ReferenceStack


@pytest.fixture
def env(stack: ReferenceStack) -> Iterator[ChaosEnv]:
    """Faults on the session's stack, read afresh from its manifest (other processes restart
    instances and record their new pids there)."""
    with StackEnv(ReferenceStack.attach(stack.stack_dir), tag=f"t{uuid.uuid4().hex[:8]}") as env:
        yield env


@dataclass
class User:
    base: str
    auth: dict[str, str]
    account_id: int

    def get(self, path: str, timeout: float = 5.0) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", headers=self.auth, timeout=timeout)

    def post(self, path: str, body: dict[str, object], timeout: float = 10.0) -> httpx.Response:
        headers = {**self.auth, "Idempotency-Key": uuid.uuid4().hex}
        return httpx.post(f"{self.base}{path}", json=body, headers=headers, timeout=timeout)


def login(stack: ReferenceStack, n: int, base: str | None = None) -> User:
    """User ``n`` logged in (through wallet-1's client proxy unless ``base`` says otherwise)."""
    url = base or stack.manifest.wallets[0].client_url
    r = httpx.post(
        f"{url}/v1/login",
        json={"username": f"user{n:05d}", "password": stack.password},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    return User(url, {"Authorization": f"Bearer {body['token']}"}, int(body["account_id"]))


def problems_left(stack: ReferenceStack) -> list[str]:
    """What is not as the stack should be between tests."""
    found = []
    tp = stack.toxiproxy
    for name, proxy in tp.proxies().items():
        if not proxy.enabled:
            found.append(f"proxy {name} disabled")
        toxics = tp.toxics(name)
        if toxics:
            found.append(f"proxy {name} has toxics {[t.name for t in toxics]}")
    pg = stack.postgres
    if pg is None or not (pg.alive() and pg.ready()):
        found.append("postgres not ready")
    else:
        triggers = run_sql(stack.dsn, "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'loadkit%'")
        if triggers:
            found.append(f"triggers left: {[r[0] for r in triggers]}")
        sessions = run_sql(
            stack.dsn,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'loadkit-chaos-%'",
        )
        if sessions[0][0]:
            found.append(f"{sessions[0][0]} chaos sessions left")
    for handle in stack.wallets:
        proc = handle.process
        if proc is None or not proc.alive():
            found.append(f"{handle.name} not running")
        elif proc.stopped():
            found.append(f"{handle.name} stopped (SIGSTOP)")
        elif not handle.ready(timeout=2):
            found.append(f"{handle.name} not ready")
    if not found:
        for state in stack.admin.state():
            if state["policy"] != "normal" or state["maintenance"]["enabled"]:
                found.append(
                    f"{state['instance']}: policy {state['policy']}, {state['maintenance']}"
                )
            limits = state["limits"]
            if limits["rate_limit"] is not None or limits["per_user_overridden"]:
                found.append(f"{state['instance']}: limits changed {limits}")
    return found


def repair(stack: ReferenceStack) -> None:
    stack.toxiproxy.reset()
    pg = stack.postgres
    if pg is not None and not pg.alive():
        pg.start()
    for handle in stack.wallets:
        proc = handle.process
        if proc is not None and proc.alive() and proc.stopped():
            proc.resume()
        if not handle.alive():
            handle.start()
    stack.admin.maintenance(False)
    stack.admin.policy("normal")
    stack.admin.limits(rate_limit=None, per_user_rate=None)


@pytest.fixture(autouse=True)
def restored(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the stack: everything must be back (toxics, processes, policy…)."""
    yield
    if "stack" not in request.fixturenames:
        return
    session: ReferenceStack = request.getfixturevalue("stack")
    stack = ReferenceStack.attach(session.stack_dir)
    left = problems_left(stack)
    if left:
        repair(stack)
    # restarted instances have new pids: the session's object must see them (later tests use it)
    session.manifest = StackManifest.read(session.stack_dir)
    if left:
        pytest.fail(f"the test left the stack changed: {left}")
