"""Declarative HTTP journeys and a user-written Locust class, end to end against a plain HTTP
service (not the wallet): templates, extract, expect, retries and outcomes, with every request
counted the same by loadkit, by Locust and by the service itself."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from loadkit.load.runconfig import Target
from loadkit.load.schedule import arrival_counts
from loadkit.profile import load_profile
from tests.conftest import PlainService
from tests.load.conftest import run_locust

pytestmark = pytest.mark.slow

PROFILE = """
name: shop
users:
  accounts: 40
  first_id: 1001
stages:
  - name: ramp
    duration: 3s
    curve: linear
    rate: 40/s
  - name: hold
    duration: 7s
    rate: 40/s
journeys:
  - name: browse-and-buy
    weight: 4
    http:
      - name: login
        method: POST
        path: /api/login
        json: {username: "shopper-{user.index}", password: "{env.SHOP_PASSWORD}"}
        expect: {ok: [200], rejected: [401]}
        extract: {token: data.access_token}
      - name: product
        path: /api/products/{user.index}
        headers: {Authorization: "Bearer {vars.token}"}
        expect: {rejected: [404]}
      - name: order
        method: POST
        path: /api/accounts/{user.id}/orders
        headers:
          Authorization: "Bearer {vars.token}"
          Idempotency-Key: "{step.idempotency_key}"
        json: {items: [{sku: SKU-42, quantity: 1}], buyer: "{user.id}"}
        expect: {ok: [201], rejected: [409, 422]}
  - name: impatient
    weight: 1
    http:
      - path: /throttle
  - name: closed-for-upgrade
    weight: 1
    http:
      - path: /maintenance
  - name: custom
    weight: 2
    locust: tests.load.shop_user:ShopUser
client:
  timeout: 3s
  retries: {attempts: 2, backoff: 50ms, max_backoff: 100ms}
"""

#: the service's route names for the timeline's endpoints
ROUTES = {
    "login": "POST /api/login",
    "product": "GET /api/products",
    "order": "POST /api/orders",
    "GET /throttle": "GET /throttle",
    "GET /maintenance": "GET /maintenance",
    "GET /healthz": "GET /healthz",
    "GET /api/products/[id]": "GET /api/products",
}


def test_declarative_and_custom_journeys_against_a_plain_service(
    plain_service: PlainService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_PASSWORD", "secret")
    before = plain_service.stats()
    run = run_locust(tmp_path, PROFILE, Target(urls=(plain_service.url,)), drain_s=2)
    after = plain_service.stats()
    assert run.codes == {"locust": 0}, run.logs

    tl = run.timeline
    profile = load_profile(tmp_path / "profile.yaml")
    assert tl.totals("action").answered == sum(arrival_counts(profile).values())

    def journey(name: str, level: str = "action") -> Counter[str]:
        counts: Counter[str] = Counter()
        for (_t, _p, j, _e, lv, *_), bucket in tl.buckets.items():
            if j == name and lv == level:
                counts.update(bucket.n)
                counts.update({f"busy:{k}": v for k, v in bucket.busy.items()})
        return counts

    # login → product (odd user index: 404, an expected refusal) → order with extracted token
    buy = journey("browse-and-buy")
    assert buy["ok"] > 0 and buy["rejected"] > 0 and buy["busy"] == 0, buy
    by_endpoint: Counter[str] = Counter()
    for (_t, _p, _j, endpoint, level, *_), bucket in tl.buckets.items():
        if level == "request":
            by_endpoint[endpoint] += bucket.answered
    assert by_endpoint["order"] == buy["ok"]  # only even users got past the product step
    assert by_endpoint["login"] == by_endpoint["product"] == buy["ok"] + buy["rejected"]

    # busy answers, retried once: 429 is throttled, a 503 marked maintenance is maintenance
    impatient = journey("impatient")
    assert impatient["busy"] == impatient["busy:throttled"] > 0, impatient
    assert journey("impatient", "request")["busy"] == 2 * impatient["busy"]
    upgrade = journey("closed-for-upgrade")
    assert upgrade["busy:maintenance"] == upgrade["busy"] > 0, upgrade

    # the user-written class ran its tasks as actions; its 401s are refusals
    custom = journey("custom", "request")
    assert custom["ok"] > 0 and custom["rejected"] > 0 and custom["busy"] == 0, custom

    # every request, counted three times over: loadkit, Locust, the service (Locust's failures
    # are loadkit's busy answers, plus what the user-written class itself calls failures: 4xx)
    requests = tl.totals("request")
    assert run.locust["Aggregated"] == {
        "requests": requests.answered,
        "failures": requests.count("busy") + custom["rejected"],
    }
    served = Counter({k: after.get(k, 0) - before.get(k, 0) for k in after})
    mine: Counter[str] = Counter()
    for endpoint, count in by_endpoint.items():
        mine[ROUTES[endpoint]] += count
    assert +served == +mine


CLOSED = """
name: closed
users:
  accounts: 10
stages:
  - {name: few, duration: 4s, users: 3}
  - {name: more, duration: 4s, users: 6}
journeys:
  - name: health
    http:
      - path: /healthz
client:
  timeout: 2s
  think_time: 100ms
"""


def test_a_closed_model_loops_its_users_with_think_time(
    plain_service: PlainService, tmp_path: Path
) -> None:
    run = run_locust(tmp_path, CLOSED, Target(urls=(plain_service.url,)), drain_s=1)
    assert run.codes == {"locust": 0}, run.logs
    tl = run.timeline
    few = tl.select("action", phase="few", t_from=1)
    more = tl.select("action", phase="more", t_from=5)
    # each user: one action, then 100 ms of thinking → a bit under 10 actions/s per user (the
    # lower bound leaves room for a busy machine: a closed loop slows down with its target)
    assert 3 * 3 * 4 <= few.answered <= 3 * 3 * 10, few.n
    assert 3 * 6 * 4 <= more.answered <= 3 * 6 * 10, more.n
    assert more.answered > 1.5 * few.answered
    assert tl.totals("action").count("unsent") == 0 and tl.totals("action").busy_rate == 0
    assert run.locust["Aggregated"]["requests"] == tl.totals("request").answered


MONEY_EXPECT = """
name: money-expect
users: {accounts: 10}
stages:
  - {name: steady, duration: 2s, rate: 10/s}
journeys:
  - name: order
    http:
      # without a bearer token the shop refuses an order with 422, which this step says
      # means "busy, try later": the money movement's outcome is then unknown, not refused
      - method: POST
        path: /api/accounts/1/orders
        headers:
          Idempotency-Key: "{step.idempotency_key}"
        json: {amount: 100}
        expect: {busy: [422]}
        money: true
client:
  timeout: 2s
  retries: {attempts: 1}
"""


def test_a_money_step_follows_its_expect_block(plain_service: PlainService, tmp_path: Path) -> None:
    run = run_locust(tmp_path, MONEY_EXPECT, Target(urls=(plain_service.url,)), drain_s=2)
    assert run.codes == {"locust": 0}, run.logs
    busy = run.timeline.totals("request")
    assert busy.count("busy") == busy.answered > 0, busy.n
    acks = run.acks()
    assert acks and {a["view"] for a in acks} == {"unknown"}, acks[:3]
    assert {a["status"] for a in acks} == {422}


FED = """
name: fed
seed: 5
users: {accounts: 6}
data:
  accounts: data/accounts.csv
  cards: {file: data/cards.csv, mode: shared-sequential, numbers: [limit]}
stages:
  - {name: hold, duration: 4s, rate: 25/s}
journeys:
  - name: fed
    tags: [data]
    http:
      - name: first
        method: POST
        path: /api/seen
        json:
          user: "{user.index}"
          login: "{data.accounts.login}"
          card: "{data.cards.number}"
          limit: "{data.cards.limit}"
          amount: "{random.int 1..5}"
          price: "{random.number 0.50..9.99}"
          pay: "{random.choice [card, wallet]}"
        extract: {card: data.card}
      - name: second
        method: POST
        path: /api/seen
        json: {echo: "{vars.card}", card: "{data.cards.number}"}
  - name: other
    tags: [other]
    http: [{path: /healthz}]
"""
CARDS = {"4111": 50, "5500": 75.5, "6011": 100, "3530": 20, "3782": 1}


def test_data_files_and_random_values_reach_the_service_from_every_worker(
    plain_service: PlainService, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "accounts.csv").write_text(
        "login,password\n" + "".join(f"acct{i},pw\n" for i in range(6))
    )
    (tmp_path / "data" / "cards.csv").write_text(
        "number,limit\n" + "".join(f"{n},{v}\n" for n, v in CARDS.items())
    )
    before = plain_service.stats()
    run = run_locust(
        tmp_path, FED, Target(urls=(plain_service.url,)), workers=2, drain_s=2, tags=("data",)
    )
    after = plain_service.stats()
    assert run.codes == {"master": 0, "worker-1": 0, "worker-2": 0}, run.logs
    served = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert served.get("GET /healthz", 0) == 0  # the tag selection left 'other' out
    bodies: list[dict[str, object]] = []
    for key, count in served.items():
        if key.startswith("seen ") and count:
            bodies += [json.loads(key[5:])] * count
    first = [b for b in bodies if "user" in b]
    second = [b for b in bodies if "echo" in b]
    profile = load_profile(tmp_path / "profile.yaml")
    assert len(first) == len(second) == sum(arrival_counts(profile).values()) == 100
    for body in first:
        assert body["login"] == f"acct{body['user']}"  # per-user: user i has row i
        assert body["limit"] == CARDS[str(body["card"])]  # a 'numbers' column is sent as one
        assert body["amount"] in range(1, 6) and body["pay"] in ("card", "wallet")
        price = body["price"]
        assert isinstance(price, float) and 0.5 <= price <= 9.99 and round(price, 2) == price
    assert {b["amount"] for b in first} == set(range(1, 6))
    assert all(b["echo"] == b["card"] for b in second)  # one row per action, step after step
    # shared-sequential: the two workers interleave, so the rows are used evenly
    uses = Counter(str(b["card"]) for b in first)
    assert set(uses) == set(CARDS) and max(uses.values()) - min(uses.values()) <= 2, uses
