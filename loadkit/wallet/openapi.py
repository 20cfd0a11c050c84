"""The wallet API as an OpenAPI 3.0 document: built here, checked in as ``openapi.json`` beside
this module, served at ``GET /openapi.json``.

The checked-in file is what the wallet serves (read once at start) and what clients and the
schemathesis test read; a test keeps it equal to :func:`document`. After changing the API::

    python -m loadkit.wallet openapi --out loadkit/wallet/openapi.json
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from loadkit.wallet.config import BIGINT_MAX, CURRENCY
from loadkit.wallet.contract import BusyCause, PolicyName

JSON = "application/json"
PROBLEM = "application/problem+json"
FILENAME = "openapi.json"

_ID = {"type": "integer", "minimum": 1, "maximum": BIGINT_MAX}
_FEN = {"type": "integer", "description": "an amount in fen (1 CNY = 100 fen)"}
_TEXT = "no control characters, no unpaired surrogates"


def _s(**fields: Any) -> dict[str, Any]:
    return dict(fields)


def _obj(
    properties: dict[str, Any], required: tuple[str, ...] = (), *, extra: bool = True
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if not extra:
        schema["additionalProperties"] = False
    return schema


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _busy(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"Retry-After": {"schema": {"type": "string"}}},
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Busy"}}},
    }


#: answers every guarded route can give
_COMMON = {
    "429": _busy("WALLET_BUSY: over the instance's or the user's request rate"),
    "503": _busy("WALLET_BUSY: overloaded, in maintenance, or the database cannot serve"),
}
_AUTH = {"401": _problem("no bearer token, or not a valid one")}
_ADMIN_AUTH = {
    "401": _problem("no bearer token"),
    "403": _problem("not the admin token"),
}
_BODY_ERRORS = {
    "400": _problem("the body is not JSON"),
    "413": _problem("the body is larger than the limit"),
    "422": _problem("a field is missing, of the wrong type or out of range"),
}
_KEY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "unique per intended movement; a retry with the same key is a replay",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
}
_OTP_HEADER = {
    "name": "X-OTP",
    "in": "header",
    "required": False,
    "description": (
        "the six-digit code sent for the otp_challenge of an OTP_REQUIRED answer; read only "
        "when the amount needs one (any other text is a wrong code)"
    ),
    "schema": {"type": "string"},
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": schema}}}


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    tag: str,
    secured: bool = True,
    body: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    guarded: bool = True,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": dict(responses)}
    if guarded:
        op["responses"].update(_COMMON)
    if not secured:
        op["security"] = []
    if body is not None:
        op["requestBody"] = _body(body)
    if parameters:
        op["parameters"] = parameters
    return op


def _movement(kind: str, fields: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    summary = {
        "topup": "add money from the user's bank card",
        "payment": "pay a merchant (large amounts need an OTP)",
        "transfer": "send money to another user (large amounts need an OTP)",
    }[kind]
    params = [_KEY_HEADER] if kind == "topup" else [_KEY_HEADER, _OTP_HEADER]
    responses = {
        "201": {
            "description": "applied (or replayed: header Idempotency-Replayed: true)",
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Movement"}}},
        },
        **_BODY_ERRORS,
        **_AUTH,
        "402": _problem("INSUFFICIENT_FUNDS"),
        "404": _problem("ACCOUNT_NOT_FOUND"),
        "409": _problem("IDEMPOTENCY_CONFLICT: the key was used for another request"),
    }
    responses["400"] = _problem("the body is not JSON, or Idempotency-Key is missing or invalid")
    if kind != "topup":
        responses["403"] = _problem("OTP_REQUIRED, OTP_INVALID or OTP_LOCKED")
        responses["422"] = _problem(
            "invalid field, NOT_A_USER / NOT_A_MERCHANT, AMOUNT_OVER_LIMIT of the risk policy"
        )
    return _op(summary, responses, tag="money", body=_obj(fields, required), parameters=params)


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _components() -> dict[str, Any]:
    problem = _obj(
        {
            "type": _s(type="string"),
            "title": _s(type="string"),
            "status": _s(type="integer"),
            "detail": _s(type="string"),
            "code": _s(type="string", description="stable machine-readable reason"),
        },
        ("type", "title", "status", "detail", "code"),
    )
    busy = {
        "allOf": [
            {"$ref": "#/components/schemas/Problem"},
            _obj(
                {
                    "code": _s(type="string", enum=["WALLET_BUSY"]),
                    "cause": _s(type="string", enum=[c.value for c in BusyCause]),
                    "retry_after": _s(type="integer", minimum=0),
                },
                ("cause", "retry_after"),
            ),
        ]
    }
    movement = _obj(
        {
            "transaction_id": _s(type="integer", nullable=True),
            "kind": _s(type="string", enum=["topup", "payment", "transfer"]),
            "from_account": _s(type="integer"),
            "to_account": _s(type="integer"),
            "amount": _s(type="integer"),
            "balance": _s(type="integer", nullable=True),
            "memo": _s(type="string"),
            "order_id": _s(type="string"),
            "replayed": _s(type="boolean"),
        },
        ("transaction_id", "kind", "from_account", "to_account", "amount", "replayed"),
    )
    return {
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "a user's token from /v1/login; the admin token for /admin",
            }
        },
        "schemas": {"Problem": problem, "Busy": busy, "Movement": movement},
    }


def _public_paths() -> dict[str, Any]:
    text = _s(type="string", description=_TEXT)
    login_ok = _obj(
        {
            "token": _s(type="string"),
            "token_type": _s(type="string", enum=["Bearer"]),
            "account_id": _s(type="integer"),
            "expires_in": _s(type="integer"),
        },
        ("token", "token_type", "account_id", "expires_in"),
    )
    history_item = _obj(
        {
            "transaction_id": _s(type="integer"),
            "kind": _s(type="string"),
            "from_account": _s(type="integer"),
            "to_account": _s(type="integer"),
            "amount": _s(type="integer"),
            "delta": _s(type="integer"),
            "memo": _s(type="string", nullable=True),
            "order_id": _s(type="string", nullable=True),
            "created_at": _s(type="string"),
        },
        ("transaction_id", "kind", "amount", "delta"),
    )
    return {
        "/v1/login": {
            "post": _op(
                "exchange a username and password for a bearer token",
                {
                    "200": _json(login_ok, "logged in"),
                    **_BODY_ERRORS,
                    "401": _problem("INVALID_CREDENTIALS"),
                    "403": _problem("LOGIN_LOCKED: too many failed logins (Retry-After)"),
                },
                tag="users",
                secured=False,
                body=_obj(
                    {
                        "username": {**text, "minLength": 1, "maxLength": 64},
                        "password": {**text, "minLength": 1, "maxLength": 256},
                    },
                    ("username", "password"),
                ),
            )
        },
        "/v1/balance": {
            "get": _op(
                "the caller's balance",
                {
                    "200": _json(
                        _obj(
                            {
                                "account_id": _s(type="integer"),
                                "balance": _s(type="integer"),
                                "currency": _s(type="string", enum=[CURRENCY]),
                            },
                            ("account_id", "balance", "currency"),
                        ),
                        "the balance in fen",
                    ),
                    **_AUTH,
                    "404": _problem("the token's account does not exist"),
                },
                tag="users",
            )
        },
        "/v1/topup": {"post": _movement("topup", {"amount": {**_FEN, **_ID}}, ("amount",))},
        "/v1/payments": {
            "post": _movement(
                "payment",
                {
                    "merchant_account": _ID,
                    "amount": {**_FEN, **_ID},
                    "order_id": {**text, "maxLength": 64},
                },
                ("merchant_account", "amount"),
            )
        },
        "/v1/transfers": {
            "post": _movement(
                "transfer",
                {"to_account": _ID, "amount": {**_FEN, **_ID}, "memo": {**text, "maxLength": 140}},
                ("to_account", "amount"),
            )
        },
        "/v1/transactions": {
            "get": _op(
                "the caller's movements, newest first, paged by transaction id",
                {
                    "200": _json(
                        _obj(
                            {
                                "items": _s(type="array", items=history_item),
                                "next_before": _s(type="integer", nullable=True),
                            },
                            ("items", "next_before"),
                        ),
                        "one page",
                    ),
                    **_AUTH,
                    "422": _problem("INVALID_QUERY"),
                },
                tag="money",
                parameters=[
                    _query("limit", _s(type="integer", minimum=1, maximum=100), "page size"),
                    _query("before", _ID, "only transactions with a lower id"),
                ],
            )
        },
        "/v1/directory/{name}": {
            "get": _op(
                "find a user or a merchant by name",
                {
                    "200": _json(
                        _obj(
                            {
                                "account_id": _s(type="integer"),
                                "name": _s(type="string"),
                                "kind": _s(type="string", enum=["user", "merchant"]),
                            },
                            ("account_id", "name", "kind"),
                        ),
                        "found",
                    ),
                    **_AUTH,
                    "404": _problem("ACCOUNT_NOT_FOUND"),
                },
                tag="users",
                parameters=[_path("name", _s(type="string", minLength=1))],
            )
        },
    }


def _admin(summary: str, ok: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    responses = {"200": ok, **_ADMIN_AUTH, **kwargs.pop("responses", {})}
    return _op(summary, responses, tag="admin", guarded=False, **kwargs)


def _admin_paths() -> dict[str, Any]:
    anything = _s(type="object")
    limits = _obj(
        {
            "max_inflight": _s(type="integer", minimum=1, maximum=1_000_000),
            "rate_limit": _s(type="number", nullable=True, exclusiveMinimum=True, minimum=0),
            "rate_burst": _s(type="number", nullable=True, exclusiveMinimum=True, minimum=0),
            "per_user_rate": _s(type="number", nullable=True, exclusiveMinimum=True, minimum=0),
            "per_user_burst": _s(type="integer", nullable=True, minimum=1),
        },
        extra=False,
    )
    return {
        "/admin/maintenance": {
            "post": _admin(
                "maintenance mode on or off (public routes answer 503 maintenance)",
                _json(anything, "the new state"),
                body=_obj(
                    {
                        "enabled": _s(type="boolean"),
                        "retry_after": _s(type="integer", minimum=0, maximum=86_400),
                        "message": _s(type="string", maxLength=500),
                    },
                    ("enabled",),
                ),
                responses=_BODY_ERRORS,
            )
        },
        "/admin/policy": {
            "post": _admin(
                "switch the risk policy",
                _json(anything, "the new policy"),
                body=_obj(
                    {"policy": _s(type="string", enum=[p.value for p in PolicyName])},
                    ("policy",),
                ),
                responses=_BODY_ERRORS,
            )
        },
        "/admin/limits": {
            "post": _admin(
                "change admission limits",
                _json(anything, "the limits now"),
                body=limits,
                responses=_BODY_ERRORS,
            )
        },
        "/admin/state": {"get": _admin("the instance's live state", _json(anything, "state"))},
        "/admin/seed": {
            "post": _admin(
                "create and fund test accounts (idempotent)",
                _json(anything, "counts"),
                body=_obj(
                    {
                        "users": _s(type="integer", minimum=0, maximum=1_000_000),
                        "merchants": _s(type="integer", minimum=0, maximum=1_000_000),
                        "balance": _s(type="integer", minimum=0),
                    }
                ),
                responses=_BODY_ERRORS,
            )
        },
        "/admin/invariants": {
            "get": _admin(
                "the ledger's invariants in one snapshot",
                _json(_obj({"ok": _s(type="boolean")}, ("ok",)), "the report"),
            )
        },
        "/admin/movements": {
            "get": _admin(
                "applied movements by idempotency key (for the integrity check)",
                _json(
                    _obj(
                        {
                            "items": _s(type="array", items=anything),
                            "next_after": _s(type="integer", nullable=True),
                        },
                        ("items", "next_after"),
                    ),
                    "one page",
                ),
                parameters=[
                    _query("since", _s(type="number", minimum=0), "Unix time"),
                    _query("after", _s(type="integer", minimum=0), "paging cursor"),
                    _query("limit", _s(type="integer", minimum=1, maximum=100_000), "page size"),
                ],
                responses={"422": _problem("INVALID_FIELD / INVALID_QUERY")},
            )
        },
        "/admin/accounts/{account_id}": {
            "get": _admin(
                "one account",
                _json(anything, "the account"),
                parameters=[_path("account_id", _s(type="integer", minimum=0))],
                responses={"404": _problem("ACCOUNT_NOT_FOUND")},
            )
        },
        "/admin/anomalies": {
            "get": _admin(
                "security events (OTP and login failures, velocity) and refusals by code",
                _json(
                    _obj(
                        {
                            "instance": _s(type="string"),
                            "events": _s(type="object", additionalProperties={"type": "integer"}),
                            "refusals": _s(type="object", additionalProperties={"type": "integer"}),
                            "recent": _s(type="array", items=anything),
                        },
                        ("instance", "events", "refusals", "recent"),
                    ),
                    "counts and recent events",
                ),
                parameters=[_query("limit", _s(type="integer", minimum=0, maximum=200), "")],
                responses={"422": _problem("INVALID_QUERY")},
            )
        },
        "/admin/otp-outbox/{challenge}": {
            "get": _admin(
                'the test "SMS" channel: the code sent for an open challenge (the outbox '
                "token or the admin token; off unless the instance has an outbox token)",
                _json(
                    _obj(
                        {
                            "challenge": _s(type="string"),
                            "account_id": _s(type="integer"),
                            "code": _s(type="string", pattern="^[0-9]{6}$"),
                            "expires_in": _s(type="integer"),
                        },
                        ("challenge", "account_id", "code", "expires_in"),
                    ),
                    "the code",
                ),
                parameters=[_path("challenge", _s(type="string"))],
                responses={"404": _problem("outbox off, or no such open challenge")},
            )
        },
    }


def _probe_paths() -> dict[str, Any]:
    status = _obj({"status": _s(type="string"), "instance": _s(type="string")}, ("status",))

    def probe(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
        return {"get": _op(summary, responses, tag="probes", secured=False, guarded=False)}

    return {
        "/healthz": probe("the process is up", {"200": _json(status, "up")}),
        "/readyz": probe(
            "ready to serve: not in maintenance, the database answers",
            {"200": _json(status, "ready"), "503": _json(status, "not ready (reason)")},
        ),
        "/metrics": probe(
            "Prometheus metrics",
            {"200": {"description": "metrics", "content": {"text/plain": {"schema": _s()}}}},
        ),
        "/openapi.json": probe("this document", {"200": _json(_s(type="object"), "OpenAPI")}),
    }


def document() -> dict[str, Any]:
    """The OpenAPI document of the wallet API."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "loadkit reference wallet",
            "version": "2",
            "description": (
                "The system under test of loadkit: a wallet on a PostgreSQL double-entry ledger. "
                "Errors are RFC 7807 problem+json with a stable code; 429 and 503 are "
                "WALLET_BUSY with a cause and Retry-After."
            ),
        },
        "security": [{"bearer": []}],
        "paths": {**_public_paths(), **_admin_paths(), **_probe_paths()},
        "components": _components(),
    }


def document_text() -> str:
    """:func:`document` as the checked-in file spells it."""
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


@cache
def served_bytes() -> bytes:
    """The checked-in ``openapi.json`` (what ``GET /openapi.json`` answers)."""
    return resources.files("loadkit.wallet").joinpath(FILENAME).read_bytes()
