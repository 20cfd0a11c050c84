"""Strict parsing of request bodies, headers and query strings into typed values.

Everything a client can get wrong becomes a :class:`Problem` with a stable code, never a 500 and
never a movement of money: malformed JSON is 400, a body over the limit 413, a missing or
mistyped field 422. Text fields refuse control characters (NUL among them: PostgreSQL cannot
store it) and lone surrogates (JSON can spell ``"\ud800"``; UTF-8 cannot encode it), so nothing
the database would choke on gets that far. Amounts are JSON integers only — ``"100"``,
``100.0``, ``true`` and ``1e2`` are refused (Python's ``bool`` is an ``int``, hence the exact
type checks)::

    body = await read_json(request, limit=65536)
    amount = parse_amount(body, max_amount=1_000_000_000)
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import orjson
from starlette.requests import Request

from loadkit.wallet.config import BIGINT_MAX
from loadkit.wallet.problems import Problem

_KEY_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: C0 controls, DEL and the surrogate range: never part of a name, a memo or a password
_BAD_TEXT_RE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def clean_text(value: str) -> bool:
    """True when ``value`` has no control characters and no lone surrogates."""
    return _BAD_TEXT_RE.search(value) is None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_int(digits: str) -> int:
    # any number too long for Python's int-from-string limit is surely beyond a bigint
    return int(digits) if len(digits) <= 40 else BIGINT_MAX + 1


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The request body as a JSON object; 400 when it is not JSON, 413 over ``limit`` bytes,
    422 when it is JSON but not an object."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > limit
        except ValueError:
            raise Problem(400, "MALFORMED_REQUEST", "Content-Length is not a number") from None
        if too_big:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise Problem(400, "MALFORMED_JSON", "the request body is empty; expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # orjson refuses integers beyond 64 bits; the stdlib reads them, so that an absurd
        # amount is answered as the invalid amount it is (422), not as broken JSON
        try:
            body = json.loads(raw, parse_constant=_reject_constant, parse_int=_parse_int)
        except (ValueError, RecursionError):
            raise Problem(400, "MALFORMED_JSON", "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Problem(422, "INVALID_BODY", "the request body must be a JSON object")
    return body


def _too_large(limit: int) -> Problem:
    return Problem(413, "BODY_TOO_LARGE", f"the request body is larger than {limit} bytes")


def parse_amount(body: dict[str, Any], max_amount: int, field: str = "amount") -> int:
    """A positive integer amount in fen, at most ``max_amount``; 422 INVALID_AMOUNT otherwise."""
    value = body.get(field)
    if type(value) is not int:
        if value is None:
            why = "is required"
        elif isinstance(value, bool):
            why = "must be an integer number of fen, not a boolean"
        elif isinstance(value, float):
            why = "must be an integer number of fen (no fractions)"
        else:
            why = f"must be an integer number of fen, not {type(value).__name__}"
        raise Problem(422, "INVALID_AMOUNT", f"{field} {why}", extra={"field": field})
    if value <= 0:
        raise Problem(
            422, "INVALID_AMOUNT", f"{field} must be positive, got {value}", extra={"field": field}
        )
    if value > max_amount:
        raise Problem(
            422,
            "INVALID_AMOUNT",
            f"{field} must be at most {max_amount} fen",
            extra={"field": field, "max_amount": max_amount},
        )
    return value


def parse_account(body: dict[str, Any], field: str) -> int:
    """An account id: a positive JSON integer; 422 INVALID_ACCOUNT otherwise."""
    value = body.get(field)
    if type(value) is not int or not 0 < value <= BIGINT_MAX:
        why = "is required" if value is None else "must be a positive integer account id"
        raise Problem(422, "INVALID_ACCOUNT", f"{field} {why}", extra={"field": field})
    return value


def parse_text(
    body: dict[str, Any], field: str, max_length: int, *, required: bool = False
) -> str | None:
    """A string field of at most ``max_length`` characters; 422 INVALID_FIELD otherwise."""
    value = body.get(field)
    if value is None:
        if required:
            raise Problem(422, "INVALID_FIELD", f"{field} is required", extra={"field": field})
        return None
    if not isinstance(value, str) or (required and not value) or len(value) > max_length:
        raise Problem(
            422,
            "INVALID_FIELD",
            f"{field} must be a string of {'1' if required else '0'} to {max_length} characters",
            extra={"field": field},
        )
    if not clean_text(value):
        raise Problem(
            422,
            "INVALID_FIELD",
            f"{field} must not contain control characters or unpaired surrogates",
            extra={"field": field},
        )
    return value


def idempotency_key(request: Request) -> str:
    """The ``Idempotency-Key`` header: 1–128 characters of ``[A-Za-z0-9._:-]``; 400 otherwise."""
    key = request.headers.get("idempotency-key")
    if key is None:
        raise Problem(
            400,
            "IDEMPOTENCY_KEY_REQUIRED",
            "money movements need an Idempotency-Key header (unique per intended movement)",
        )
    if not _KEY_RE.fullmatch(key):
        raise Problem(
            400,
            "INVALID_IDEMPOTENCY_KEY",
            "Idempotency-Key must be 1-128 characters of A-Z a-z 0-9 . _ : -",
        )
    return key


def query_int(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    """An integer query parameter in ``[low, high]``; 422 INVALID_QUERY otherwise."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not low <= int(raw) <= high:
        raise Problem(
            422,
            "INVALID_QUERY",
            f"{name} must be an integer from {low} to {high}",
            extra={"field": name},
        )
    return int(raw)


def request_hash(kind: str, to_account: int, amount: int, note: str | None) -> str:
    """What makes two requests "the same" for idempotency: kind, payee, amount and note."""
    text = f"{kind}|{to_account}|{amount}|{'' if note is None else note}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
