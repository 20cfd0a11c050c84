"""Real Locust runs against the real reference wallet: the schedule is kept, a stalled target shows
as busy answers and latency (not as fewer requests), and every count agrees with Locust's CSV and
the wallet's own metrics; a master with two workers splits the arrivals and adds them up."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from loadkit.load.runconfig import Target, WalletTarget
from loadkit.load.schedule import arrival_counts
from loadkit.profile import load_profile
from loadkit.stack.reference import ReferenceStack
from tests.conftest import PlainService
from tests.load.conftest import LocustRun, run_locust, sleep_until

pytestmark = pytest.mark.slow

#: timeline endpoints of the wallet journeys → the wallet's metrics route label
ROUTES = {
    "POST /v1/login": "login",
    "GET /v1/balance": "balance",
    "POST /v1/payments": "payments",
    "POST /v1/transfers": "transfers",
    "POST /v1/topup": "topup",
    "GET /v1/transactions": "transactions",
    "GET /admin/otp-outbox/{challenge}": "admin_otp_outbox",
}

WALLET_PROFILE = """
name: wallet-run
users:
  accounts: 200
  max_in_flight: 400
stages:
  - name: warm
    duration: 10s
    rate: 30/s
  - name: peak
    duration: 10s
    rate: 60/s
journeys:
  - wallet: login
    weight: 5
  - wallet: balance
    weight: 30
  - wallet: pay_merchant
    weight: 20
    amount: {min: 1, max: 50}
  - wallet: pay_merchant
    name: big-buy
    weight: 2
    amount: 5001              # over the normal policy's OTP threshold: every one needs an OTP
  - wallet: p2p_transfer
    weight: 20
    amount: {min: 1, max: 20}
  - wallet: topup
    weight: 10
    amount: 50
  - wallet: history
    weight: 13
    limit: 5
client:
  timeout: 5s
  retries: {attempts: 2, backoff: 200ms, max_backoff: 1s}
"""


def wallet_target(stack: ReferenceStack, urls: list[str] | None = None) -> Target:
    db = stack.manifest.database
    pg = stack.postgres
    assert pg is not None

    def accounts(kind: str) -> tuple[tuple[int, str], ...]:
        out = pg.psql(f"SELECT id, name FROM accounts WHERE kind = '{kind}' ORDER BY id", db)
        return tuple((int(i), n) for i, n in (line.split("|") for line in out.split()))

    return Target(
        urls=tuple(urls or [w.client_url for w in stack.manifest.wallets]),
        kind="reference",
        wallet=WalletTarget(
            stack.password,
            accounts("user"),
            accounts("merchant"),
            otp_outbox_token=stack.manifest.otp_outbox_token,
        ),
    )


def wallet_requests(stack: ReferenceStack) -> Counter[str]:
    """``wallet_http_requests_total`` per route, summed over instances and statuses."""
    counts: Counter[str] = Counter()
    pattern = re.compile(r"^wallet_http_requests_total\{(.*)\} ([0-9.e+]+)$", re.M)
    for w in stack.manifest.wallets:
        text = httpx.get(f"{w.url}/metrics", timeout=10).text
        for labels, value in pattern.findall(text):
            route = re.search(r'route="([^"]*)"', labels)
            assert route is not None
            counts[route[1]] += int(float(value))
    return counts


def requests_by_endpoint(run: LocustRun) -> Counter[str]:
    counts: Counter[str] = Counter()
    for (_t, _p, _j, endpoint, level, *_), bucket in run.timeline.buckets.items():
        if level == "request":
            counts[endpoint] += bucket.answered
    return counts


def test_wallet_run_keeps_the_schedule_and_every_count_agrees(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    before = wallet_requests(stack)
    run = run_locust(tmp_path, WALLET_PROFILE, wallet_target(stack))
    after = wallet_requests(stack)
    assert run.codes == {"locust": 0}, run.logs

    # the schedule, second by second, and the achieved rate of each stage (±5%)
    profile = load_profile(tmp_path / "profile.yaml")
    expected = arrival_counts(profile)
    actions = run.timeline.per_second("action")
    assert {t: b.answered + b.count("unsent") for t, b in actions.items()} == {
        t: n for (t, _), n in expected.items()
    }
    for phase, rate in (("warm", 30), ("peak", 60)):
        stage = run.timeline.select("action", phase=phase)
        assert stage.count("unsent") == 0
        assert abs(stage.answered / 10 - rate) <= 0.05 * rate, (phase, stage.n)

    # an unsaturated wallet: (almost) nothing busy
    assert run.timeline.totals("action").busy_rate < 0.02, run.timeline.totals("action").n

    # every request: the timeline, Locust's CSV and the wallet's own counters agree exactly
    requests = run.timeline.totals("request")
    assert run.locust["Aggregated"] == {
        "requests": requests.answered,
        "failures": requests.count("busy"),
    }
    mine = requests_by_endpoint(run)
    for endpoint, count in mine.items():
        method, path = endpoint.split(" ", 1)
        assert run.locust[f"{method} {path}"]["requests"] == count, endpoint
    served = {route: after[route] - before[route] for route in ROUTES.values()}
    assert {ROUTES[e]: n for e, n in mine.items()} == {r: n for r, n in served.items() if n}

    # the OTP step ran, and every money movement has an acknowledgement line
    assert mine["GET /admin/otp-outbox/{challenge}"] > 0
    acks = run.acks()
    moved = Counter(a["journey"] for a in acks)
    for journey in ("pay_merchant", "big-buy", "p2p_transfer", "topup"):
        attempted = sum(
            b.answered
            for (_t, _p, j, _e, level, *_), b in run.timeline.buckets.items()
            if j == journey and level == "action"
        )
        assert moved[journey] == attempted, journey
    big = [a for a in acks if a["journey"] == "big-buy"]
    assert big and all(a["view"] == "acknowledged" and a["transaction_id"] for a in big), big
    assert {a["view"] for a in acks} <= {"acknowledged", "refused", "unknown"}
    assert len({a["key"] for a in acks}) == len(acks)


STALL_PROFILE = """
name: stall
users:
  accounts: 200
  max_in_flight: 600
stages:
  - name: steady
    duration: 22s
    rate: 40/s
journeys:
  - wallet: balance
    weight: 3
  - wallet: p2p_transfer
    weight: 1
    amount: {min: 1, max: 5}
client:
  timeout: 2s
  retries: {attempts: 3, backoff: 500ms, max_backoff: 1s, honour_retry_after: false}
"""


def test_a_stalled_target_shows_as_busy_and_latency_not_as_fewer_requests(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    wallet = stack.wallet("wallet-1")
    stall_at, stall_s = 8, 5.0

    def stall(t0: float) -> None:
        sleep_until(t0 + stall_at)
        assert wallet.pause()
        try:
            time.sleep(stall_s)
        finally:
            wallet.resume()

    try:
        run = run_locust(tmp_path, STALL_PROFILE, wallet_target(stack), during=stall)
    finally:
        wallet.resume()
    assert run.codes == {"locust": 0}, run.logs

    # offered load kept its schedule through the stall: every arrival, on time, none unsent
    profile = load_profile(tmp_path / "profile.yaml")
    expected = {t: n for (t, _), n in arrival_counts(profile).items()}
    actions = run.timeline.per_second("action")
    assert {t: b.answered for t, b in actions.items()} == expected
    assert run.timeline.totals("action").count("unsent") == 0

    # the stall shows in busy answers (timeouts) and in latency from the intended send time
    during = range(stall_at, stall_at + int(stall_s))
    window = run.timeline.select("request", t_from=during[0], t_to=during[-1] + 1)
    assert window.busy.get("timeout", 0) > 0, window.busy
    p99 = run.timeline.select("action", t_from=during[0], t_to=during[-1] + 1).percentile_ms(99)
    assert p99 is not None and p99 >= 5000, p99
    calm = run.timeline.select("action", t_from=2, t_to=stall_at - 1).percentile_ms(99)
    assert calm is not None and calm < 1000, calm


MIX_PROFILE = """
name: split
users:
  accounts: 50
  max_in_flight: 100
stages:
  - name: ramp
    duration: 3s
    curve: linear
    rate: 60/s
  - name: hold
    duration: 7s
    rate: 60/s
journeys:
  - name: health
    weight: 3
    http:
      - path: /healthz
  - name: product
    weight: 1
    http:
      - path: /api/products/{user.index}
        headers: {Authorization: "Bearer tok-{user.id}"}
client:
  timeout: 3s
"""


def test_a_master_with_two_workers_adds_up_what_each_worker_sent(
    plain_service: PlainService, tmp_path: Path
) -> None:
    before = plain_service.stats()
    run = run_locust(tmp_path, MIX_PROFILE, Target(urls=(plain_service.url,)), workers=2, drain_s=2)
    after = plain_service.stats()
    assert run.codes == {"master": 0, "worker-1": 0, "worker-2": 0}, run.logs
    assert sorted(run.shares) == [0, 1], run.logs

    profile = load_profile(tmp_path / "profile.yaml")
    scheduled = sum(arrival_counts(profile).values())
    assert sum(s["arrivals"] for s in run.shares.values()) == scheduled
    assert [s["arrivals"] for s in run.shares.values()] in (
        [scheduled // 2, scheduled - scheduled // 2],
        [scheduled - scheduled // 2, scheduled // 2],
    )
    requests = run.timeline.totals("request")
    sent = sum(s["requests"] for s in run.shares.values())
    served = sum(after.get(k, 0) - before.get(k, 0) for k in after)
    assert requests.answered == sent == run.locust["Aggregated"]["requests"] == served
    assert run.timeline.totals("action").answered == scheduled
