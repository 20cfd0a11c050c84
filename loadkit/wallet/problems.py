"""Every error answer the wallet gives: RFC 7807 problem+json with a stable machine ``code``.

Handlers raise :class:`Problem` (a refusal: 4xx) or :class:`Busy` (the service cannot serve now:
429/503 with ``Retry-After`` and ``code: WALLET_BUSY`` plus a ``cause``); the request guard turns
either into a response, so no handler builds error bodies by hand::

    raise Problem(422, "INVALID_AMOUNT", "amount must be a positive integer number of fen")
    raise Busy(BusyCause.DB_TIMEOUT, "the database did not answer in 2s")
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from starlette.responses import Response

from loadkit.wallet.contract import BusyCause

PROBLEM_TYPE_PREFIX = "urn:loadkit:wallet:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class JSONResponse(Response):
    """A JSON response rendered with orjson (several times faster than the stdlib)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class Problem(Exception):
    """A refusal the client can act on; becomes a problem+json response."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = dict(extra) if extra else {}
        self.headers = dict(headers) if headers else {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_PREFIX + self.code.lower().replace("_", "-"),
            "title": _title(self.status),
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        body.update(self.extra)
        return body

    def response(self) -> Response:
        return problem_response(self.status, self.body(), self.headers)


class Busy(Problem):
    """The wallet cannot serve the request now: 429 or 503, ``Retry-After``, ``WALLET_BUSY``."""

    def __init__(
        self,
        cause: BusyCause,
        detail: str,
        *,
        retry_after: int = 1,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        retry_after = max(0, int(retry_after))
        super().__init__(
            cause.status,
            "WALLET_BUSY",
            detail,
            extra={"cause": cause.value, "retry_after": retry_after, **(extra or {})},
            headers={"Retry-After": str(retry_after), **(headers or {})},
        )
        self.cause = cause
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["title"] = "Wallet busy"
        return body


def problem_response(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
