"""The public API (``/v1/...``): login, balance, top-ups, payments, transfers, history, directory.

Handlers validate, ask risk control, and make one ledger call; the runtime's guard around them
does admission, deadlines and error answers. Money movements need an ``Idempotency-Key``: a retry
with the same key and payload gets the stored answer (``Idempotency-Replayed: true``) and moves
money once; the same key with another payload is a 409.

The key comes first: every database call that can answer a movement looks the key up before it
applies a policy, so a replay gets the first answer even after the policy changed (a movement
applied under ``normal`` is not refused when replayed under ``peak``). The risk policy's own
refusals (``AMOUNT_OVER_LIMIT``, ``OTP_LOCKED``) are stored under the key like the ledger's; an
``OTP_REQUIRED`` is not (the retry with the code continues the same movement).

Logins count failures per account in the database: after ``login_max_failures`` within
``login_window`` seconds the account is locked for ``login_lock`` seconds (403 ``LOGIN_LOCKED``,
whatever the password)::

    POST /v1/transfers  {"to_account": 42, "amount": 500}
    Authorization: Bearer <token>      Idempotency-Key: 7f3c…
    -> 201 {"transaction_id": 9, "kind": "transfer", ..., "balance": 99500, "replayed": false}
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from loadkit.wallet.anomaly import SecurityEvent
from loadkit.wallet.config import CURRENCY
from loadkit.wallet.contract import UnsafeMode
from loadkit.wallet.problems import JSONResponse, Problem
from loadkit.wallet.runtime import WalletRuntime
from loadkit.wallet.unsafe import Movement, misapply
from loadkit.wallet.validation import (
    clean_text,
    idempotency_key,
    parse_account,
    parse_amount,
    parse_text,
    query_int,
    read_json,
    request_hash,
)

MAX_MEMO = 140
MAX_ORDER_ID = 64
MAX_PAGE = 100


class PublicApi:
    """Handlers of the ``/v1`` routes, bound to one runtime."""

    def __init__(self, runtime: WalletRuntime) -> None:
        self.rt = runtime
        self.ledger = runtime.ledger
        self.max_body = runtime.config.max_body
        self.max_amount = runtime.config.max_amount

    async def login(self, request: Request) -> Response:
        body = await read_json(request, self.max_body)
        username = parse_text(body, "username", 64, required=True)
        password = parse_text(body, "password", 256, required=True)
        assert username is not None and password is not None
        found = await self.ledger.user_credentials(username)
        anomalies = self.rt.anomalies
        if found is not None and found.locked_for > 0:
            anomalies.record(SecurityEvent.LOGIN_LOCKED, account_id=found.account_id)
            raise _login_locked(found.locked_for)
        if found is None or not await self.rt.passwords.verify(password, found.password_hash):
            account = found.account_id if found is not None else None
            anomalies.record(
                SecurityEvent.LOGIN_FAILED,
                account_id=account,
                detail="wrong password" if account is not None else "unknown username",
            )
            if found is not None:
                locked_for = await self.ledger.login_failed(found.account_id)
                if locked_for:
                    anomalies.record(
                        SecurityEvent.LOGIN_LOCKED,
                        account_id=account,
                        detail=f"{self.rt.config.login_max_failures} failures: "
                        f"locked for {locked_for}s",
                    )
            raise Problem(401, "INVALID_CREDENTIALS", "unknown username or wrong password")
        account_id = found.account_id
        if found.failures:
            await self.ledger.login_succeeded(account_id)
        return JSONResponse(
            {
                "token": self.rt.signer.issue(account_id),
                "token_type": "Bearer",
                "account_id": account_id,
                "expires_in": self.rt.signer.ttl,
            }
        )

    async def balance(self, request: Request) -> Response:
        account_id = self.rt.authenticate(request)
        balance = await self.ledger.balance(account_id)
        if balance is None:
            raise Problem(404, "ACCOUNT_NOT_FOUND", "the token's account does not exist")
        return JSONResponse({"account_id": account_id, "balance": balance, "currency": CURRENCY})

    async def topup(self, request: Request) -> Response:
        account_id = self.rt.authenticate(request)
        key = idempotency_key(request)
        body = await read_json(request, self.max_body)
        amount = parse_amount(body, self.max_amount)
        digest = request_hash("topup", account_id, amount, None)
        bank = await self.ledger.bank_id()
        return await self._move(key, account_id, digest, "topup", bank, account_id, amount)

    async def payment(self, request: Request) -> Response:
        account_id = self.rt.authenticate(request)
        key = idempotency_key(request)
        body = await read_json(request, self.max_body)
        merchant = parse_account(body, "merchant_account")
        amount = parse_amount(body, self.max_amount)
        order_id = parse_text(body, "order_id", MAX_ORDER_ID)
        if merchant == account_id:
            raise Problem(422, "SELF_PAYMENT", "an account cannot pay itself")
        digest = request_hash("payment", merchant, amount, order_id)
        refused = await self._risk(request, key, account_id, digest, "payment", amount)
        if refused is not None:
            return refused
        return await self._move(
            key, account_id, digest, "payment", account_id, merchant, amount, order_id=order_id
        )

    async def transfer(self, request: Request) -> Response:
        account_id = self.rt.authenticate(request)
        key = idempotency_key(request)
        body = await read_json(request, self.max_body)
        to_account = parse_account(body, "to_account")
        amount = parse_amount(body, self.max_amount)
        memo = parse_text(body, "memo", MAX_MEMO)
        if to_account == account_id:
            raise Problem(422, "SELF_TRANSFER", "cannot transfer to your own account")
        digest = request_hash("transfer", to_account, amount, memo)
        refused = await self._risk(request, key, account_id, digest, "transfer", amount)
        if refused is not None:
            return refused
        return await self._move(
            key, account_id, digest, "transfer", account_id, to_account, amount, memo=memo
        )

    async def _risk(
        self, request: Request, key: str, account_id: int, digest: str, kind: str, amount: int
    ) -> Response | None:
        """None when the policy lets the movement go ahead (and an OTP it needed was right);
        else the answer: the key's stored one when it has one, a stored refusal, or a 403.

        Movements the policy lets through need no lookup here: ``wallet_move`` looks the key up
        before anything else."""
        risk = self.rt.risk
        policy = risk.policy
        refusal = risk.over_limit(amount, policy)
        if refusal is not None:
            stored = {"code": refusal.code, "detail": refusal.detail, **refusal.extra}
            result = await self.ledger.refuse(key, account_id, digest, refusal.status, stored)
            return self._answer(kind, result)
        if amount <= policy.otp_threshold:
            return None
        otp = risk.otp
        code = request.headers.get("x-otp")
        if code is None:
            challenge = otp.new_challenge()
            mac = otp.mac(account_id, key, digest, otp.code(challenge))
            result = await self.ledger.otp_challenge(
                key, account_id, digest, challenge, mac, otp.ttl
            )
            if "status" in result:
                return self._answer(kind, result)
            raise risk.otp_required(result["challenge"], result["expires_in"], policy)
        mac = otp.mac(account_id, key, digest, code.strip())
        result = await self.ledger.otp_verify(key, account_id, digest, mac, otp.max_failures)
        verdict = result.get("otp")
        if verdict == "ok":
            return None
        anomalies = self.rt.anomalies
        if "status" in result:  # the key's answer: stored before, or OTP_LOCKED just now
            if verdict == "locked":
                anomalies.record(SecurityEvent.OTP_FAILED, account_id=account_id)
                anomalies.record(
                    SecurityEvent.OTP_LOCKED,
                    account_id=account_id,
                    detail=f"challenge {result['body'].get('otp_challenge')}",
                )
            return self._answer(kind, result)
        if verdict == "wrong":
            anomalies.record(
                SecurityEvent.OTP_FAILED,
                account_id=account_id,
                detail=f"challenge {result['challenge']}: {result['failures']} wrong",
            )
            raise Problem(
                403,
                "OTP_INVALID",
                "the one-time password is wrong; "
                f"{result['attempts_left']} more wrong code(s) lock this movement",
                extra={"attempts_left": result["attempts_left"]},
            )
        raise Problem(
            403,
            "OTP_INVALID",
            "there is no open OTP challenge for this request (it expired, or was issued for "
            "another amount or payee): retry without X-OTP to get a new code",
        )

    async def _move(
        self,
        key: str,
        account_id: int,
        digest: str,
        kind: str,
        from_account: int,
        to_account: int,
        amount: int,
        *,
        memo: str | None = None,
        order_id: str | None = None,
    ) -> Response:
        if self.rt.config.unsafe is UnsafeMode.MISAPPLY:  # UNSAFE: not what was asked
            from_account, to_account, amount = misapply(key, kind, from_account, to_account, amount)
        if self.rt.write_behind is not None:  # UNSAFE: acknowledged before it is committed
            body = self.rt.write_behind.accept(
                Movement(
                    key, account_id, digest, kind, from_account, to_account, amount, memo, order_id
                )
            )
            self.rt.metrics.movements.labels(kind, "applied").inc()
            return JSONResponse({**body, "replayed": False}, status_code=201)
        result = await self.ledger.move(
            key, account_id, digest, kind, from_account, to_account, amount, memo, order_id
        )
        return self._answer(kind, result)

    def _answer(self, kind: str, result: dict[str, Any]) -> Response:
        """The response for a ledger result (applied, replayed, refused or a key conflict)."""
        status: int = result["status"]
        movements = self.rt.metrics.movements
        if status == 409:
            movements.labels(kind, "conflict").inc()
            raise Problem(
                409,
                "IDEMPOTENCY_CONFLICT",
                "this Idempotency-Key was already used for a different request",
            )
        replayed: bool = result["replayed"]
        stored: dict[str, Any] = result["body"]
        headers = {"Idempotency-Replayed": "true"} if replayed else None
        if status == 201:
            movements.labels(kind, "replayed" if replayed else "applied").inc()
            return JSONResponse({**stored, "replayed": replayed}, status_code=201, headers=headers)
        movements.labels(kind, "refused").inc()
        extra = {k: v for k, v in stored.items() if k not in ("code", "detail")}
        extra["replayed"] = replayed
        raise Problem(status, stored["code"], stored["detail"], extra=extra, headers=headers)

    async def transactions(self, request: Request) -> Response:
        account_id = self.rt.authenticate(request)
        limit = query_int(request, "limit", 20, 1, MAX_PAGE)
        before = query_int(request, "before", None, 1, 2**63 - 1)
        assert limit is not None
        rows = await self.ledger.history(account_id, before, limit + 1)
        items = [
            {
                "transaction_id": row["id"],
                "kind": row["kind"],
                "from_account": row["from_account"],
                "to_account": row["to_account"],
                "amount": row["amount"],
                "delta": row["delta"],
                "memo": row["memo"],
                "order_id": row["order_id"],
                "created_at": row["created_at"],
            }
            for row in rows[:limit]
        ]
        next_before = items[-1]["transaction_id"] if len(rows) > limit else None
        return JSONResponse({"items": items, "next_before": next_before})

    async def directory(self, request: Request) -> Response:
        """Find a user or merchant by name (what a payer types or scans)."""
        self.rt.authenticate(request)
        name: str = request.path_params["name"]
        found = await self.ledger.lookup(name) if len(name) <= 64 and clean_text(name) else None
        if found is None:
            raise Problem(404, "ACCOUNT_NOT_FOUND", f"no user or merchant named {name!r}")
        return JSONResponse({"account_id": found[0], "name": name, "kind": found[1]})


def _login_locked(seconds: int) -> Problem:
    return Problem(
        403,
        "LOGIN_LOCKED",
        f"too many failed logins: this account is locked for {seconds} more second(s)",
        extra={"retry_after": seconds},
        headers={"Retry-After": str(seconds)},
    )
