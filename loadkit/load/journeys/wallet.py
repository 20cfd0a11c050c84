"""The reference wallet's journeys: login, balance, pay_merchant, p2p_transfer, topup, history.

Each virtual user is one seeded account (``target.wallet.users`` of the run config). It logs in on
its first action and keeps the token; a 401 later (an expired or unknown token) logs it in again
and repeats the request once. Money movements carry a fresh ``Idempotency-Key``, which the
client's retries reuse (``client.retries.reuse_idempotency_key``). When a payment or a transfer
is answered ``403 OTP_REQUIRED`` and the journey says ``otp: true``, the action reads the code
from the stack's test "SMS" outbox (``GET /admin/otp-outbox/{challenge}`` with the outbox token of
``target.wallet``: the user's own token cannot read it) and repeats the request with ``X-OTP`` and
the same key, as the user would after the SMS; with ``otp: false`` the 403 ends the action as
``rejected``.

Every money movement the client attempted becomes an ``acks.bin`` line ``sent`` before its
request leaves (and one for each fresh key a retry makes), then one with the client's final view
of it (``acknowledged``, ``refused`` or ``unknown``)::

    journey = WalletJourneyRunner(spec, setup)
    journey.run(action)       # one arrival of this journey for action.user
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from loadkit.errors import ConfigError
from loadkit.load.client import Action, Endpoint
from loadkit.load.journeys.base import Setup, VirtualUser
from loadkit.profile.model import AmountRange, WalletJourney, WalletJourneyKind
from loadkit.profile.outcome import BUSY, CAUSES, OK, Cause, MoneyView, money_view
from loadkit.rundir.writer import SENT, ack_record

#: amounts (fen) of journeys whose profile entry names none
DEFAULT_AMOUNTS = {
    WalletJourneyKind.PAY_MERCHANT: AmountRange(100, 20_000),
    WalletJourneyKind.P2P_TRANSFER: AmountRange(100, 10_000),
    WalletJourneyKind.TOPUP: AmountRange(10_000, 10_000),
}
DEFAULT_PAGE = 20
#: the timeline endpoint of the OTP step (the wallet's test "SMS" outbox)
OTP_OUTBOX_ENDPOINT = "GET /admin/otp-outbox/{challenge}"
_SERVER_ERROR = CAUSES.index(Cause.SERVER_ERROR)


def bind_accounts(users: list[VirtualUser], setup: Setup) -> None:
    """Give each virtual user its seeded account, username and login body."""
    wallet = setup.config.target.wallet
    if wallet is None:
        raise ConfigError("run config: wallet journeys need target.wallet (a reference target)")
    for user in users:
        user.account, user.username = wallet.users[user.index]
        user.login_body = orjson.dumps({"username": user.username, "password": wallet.password})


class WalletJourneyRunner:
    """One wallet journey of the profile (see the module docstring)."""

    def __init__(self, spec: WalletJourney, setup: Setup) -> None:
        self.name = spec.name
        self.spec = spec
        self.kind = spec.kind
        self.action_sid = setup.action_series(spec.name)
        self.client = setup.client
        self.recorder = setup.recorder
        self.rng = setup.rng
        self.base = setup.base
        wallet = setup.config.target.wallet
        if wallet is None:
            raise ConfigError(
                f"journey '{spec.name}' is a wallet journey: the run needs a reference target"
            )
        self.accounts = [account for account, _ in wallet.users[: setup.all_users]]
        self.merchants = [account for account, _ in wallet.merchants]
        if self.kind is WalletJourneyKind.PAY_MERCHANT and not self.merchants:
            raise ConfigError("run config: pay_merchant needs target.wallet.merchants")
        if self.kind is WalletJourneyKind.P2P_TRANSFER and len(self.accounts) < 2:
            raise ConfigError("run config: p2p_transfer needs at least two wallet users")
        self.amount = spec.amount or DEFAULT_AMOUNTS.get(self.kind, AmountRange(100, 100))
        self.page = f"/v1/transactions?limit={spec.limit or DEFAULT_PAGE}"
        ep = setup.endpoint
        self.ep_login = ep(self.name, "POST /v1/login", "POST")
        self.ep_balance = ep(self.name, "GET /v1/balance", "GET")
        self.ep_history = ep(self.name, "GET /v1/transactions", "GET")
        self.ep_otp = ep(self.name, OTP_OUTBOX_ENDPOINT, "GET")
        self.outbox_auth = (
            f"Authorization: Bearer {wallet.otp_outbox_token}\r\n"
            if wallet.otp_outbox_token
            else ""
        )
        self.ep_move = {
            WalletJourneyKind.PAY_MERCHANT: ep(self.name, "POST /v1/payments", "POST"),
            WalletJourneyKind.P2P_TRANSFER: ep(self.name, "POST /v1/transfers", "POST"),
            WalletJourneyKind.TOPUP: ep(self.name, "POST /v1/topup", "POST"),
        }.get(self.kind)

    def run(self, a: Action) -> None:
        user: VirtualUser = a.user
        kind = self.kind
        if kind is WalletJourneyKind.LOGIN:
            self._login(a, user)
            return
        if user.token is None and not self._login(a, user):
            return
        if kind is WalletJourneyKind.BALANCE:
            self._authed(a, user, self.ep_balance, "/v1/balance")
        elif kind is WalletJourneyKind.HISTORY:
            self._authed(a, user, self.ep_history, self.page)
        else:
            self._move(a, user)

    def _login(self, a: Action, user: VirtualUser) -> bool:
        self.client.call(a, self.ep_login, user.target, "/v1/login", "", user.login_body)
        if a.outcome != OK:
            return False
        data = a.json()
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str):
            a.outcome, a.cause = BUSY, _SERVER_ERROR  # a 2xx without a token: a broken answer
            return False
        user.token = token
        user.auth = f"Authorization: Bearer {token}\r\n"
        return True

    def _authed(
        self,
        a: Action,
        user: VirtualUser,
        ep: Endpoint,
        path: str,
        body: bytes | None = None,
        key: str | None = None,
        extra: str = "",
        on_key: Callable[[str], None] | None = None,
    ) -> None:
        call = self.client.call
        call(a, ep, user.target, path, user.auth + extra, body, key, on_key=on_key)
        if a.status == 401:
            user.token = None
            key = a.key if key is not None else None  # retries may have replaced the key
            if self._login(a, user):
                call(a, ep, user.target, path, user.auth + extra, body, key, on_key=on_key)

    def _move(self, a: Action, user: VirtualUser) -> None:
        assert self.ep_move is not None
        kind = self.kind
        rng = self.rng
        amount = rng.randint(self.amount.min_fen, self.amount.max_fen)
        key = self.client.new_key()
        source: int | None = user.account
        if kind is WalletJourneyKind.PAY_MERCHANT:
            to = self.merchants[rng.randrange(len(self.merchants))]
            body = orjson.dumps({"merchant_account": to, "amount": amount})
            path, label = "/v1/payments", "payment"
        elif kind is WalletJourneyKind.P2P_TRANSFER:
            to = self.accounts[rng.randrange(len(self.accounts))]
            if to == user.account:
                to = self.accounts[(self.accounts.index(to) + 1) % len(self.accounts)]
            body = orjson.dumps({"to_account": to, "amount": amount})
            path, label = "/v1/transfers", "transfer"
        else:
            to, source = user.account, None  # the money comes from the user's bank card
            body = orjson.dumps({"amount": amount})
            path, label = "/v1/topup", "topup"
        line = {
            "t": round(a.t - self.base, 3),
            "journey": self.name,
            "kind": label,
            "key": key,
            "account": user.account,
            "from": source,
            "to": to,
            "amount": amount,
            "view": SENT,
            "status": None,
            "transaction_id": None,
        }
        recorder = self.recorder
        recorder.sent(ack_record(line))  # on disk before the key leaves

        def sent(new: str) -> None:  # a retry's fresh key (reuse_idempotency_key: false)
            recorder.sent(ack_record({**line, "key": new}))

        self._authed(a, user, self.ep_move, path, body, key, on_key=sent)
        status, answer, outcome = a.status, a.body, a.outcome
        if status == 403 and self.spec.otp and kind is not WalletJourneyKind.TOPUP:
            challenge = _field(answer, "otp_challenge")
            if isinstance(challenge, str):
                path_otp = f"/admin/otp-outbox/{challenge}"
                self.client.call(a, self.ep_otp, user.target, path_otp, self.outbox_auth)
                code = _field(a.body, "code") if a.outcome == OK else None
                if isinstance(code, str):
                    otp = f"X-OTP: {code}\r\n"
                    self._authed(a, user, self.ep_move, path, body, a.key or key, otp, sent)
                    status, answer, outcome = a.status, a.body, a.outcome
        view = money_view(outcome)
        transaction = _field(answer, "transaction_id") if view is MoneyView.ACKNOWLEDGED else None
        line.update(key=a.key or key, view=view, status=status or None, transaction_id=transaction)
        recorder.ack(ack_record(line))
        for old in a.superseded:  # retries with fresh keys: each earlier key may have moved money
            line.update(key=old, view="unknown", status=None, transaction_id=None)
            recorder.ack(ack_record(line))


def _field(body: bytes, name: str) -> object:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data.get(name) if isinstance(data, dict) else None
