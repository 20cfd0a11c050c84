"""A user's own payment service (not the wallet) for the user-declared integrity checks.

Run it as ``python -m tests.integrity.pay_service PORT DSN [--lose-every N]``. Payments go into a
real PostgreSQL table; with ``--lose-every N`` every N-th new payment is answered 201 but never
written (the bug the check must find)::

    POST /pay {"amount": 100}  Idempotency-Key: k  -> 201 {"payment": {"id": 7}}
    POST /pay-busy            -> 503, nothing written (the client cannot know: outcome unknown)
    GET  /applied?since=UNIX  -> ["k", ...]   (the keys of the payments written since then)
    GET  /stats               -> {"answered": 120, "dropped": 12}
    GET  /healthz             -> 200
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import AsyncIterator

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    id bigserial PRIMARY KEY,
    idem_key text NOT NULL UNIQUE,
    amount bigint NOT NULL,
    created_at double precision NOT NULL
)
"""


def create_app(dsn: str, lose_every: int) -> Starlette:
    state: dict[str, object] = {}
    stats = {"answered": 0, "dropped": 0, "new": 0}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=8)
        await pool.execute(SCHEMA)
        state["pool"] = pool
        yield
        await pool.close()

    async def pay(request: Request) -> JSONResponse:
        key = request.headers.get("idempotency-key")
        body = await request.json()
        amount = body.get("amount") if isinstance(body, dict) else None
        if not key or not isinstance(amount, int) or amount <= 0:
            return JSONResponse({"error": "need Idempotency-Key and a positive amount"}, 422)
        pool = state["pool"]
        assert isinstance(pool, asyncpg.Pool)
        found = await pool.fetchval("SELECT id FROM payments WHERE idem_key = $1", key)
        if found is None:
            stats["new"] += 1
            if lose_every and stats["new"] % lose_every == 0:
                stats["dropped"] += 1  # acknowledged, never written
                stats["answered"] += 1
                return JSONResponse({"payment": {"id": None}}, 201)
            found = await pool.fetchval(
                "INSERT INTO payments (idem_key, amount, created_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (idem_key) DO UPDATE SET amount = payments.amount RETURNING id",
                key,
                amount,
                time.time(),
            )
        stats["answered"] += 1
        return JSONResponse({"payment": {"id": found}}, 201)

    async def busy(request: Request) -> JSONResponse:
        return JSONResponse({"error": "busy"}, 503)

    async def applied(request: Request) -> JSONResponse:
        since = float(request.query_params.get("since", "0"))
        pool = state["pool"]
        assert isinstance(pool, asyncpg.Pool)
        rows = await pool.fetch("SELECT idem_key FROM payments WHERE created_at >= $1", since)
        return JSONResponse([r["idem_key"] for r in rows])

    async def get_stats(request: Request) -> JSONResponse:
        return JSONResponse(stats)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/pay", pay, methods=["POST"]),
            Route("/pay-busy", busy, methods=["POST"]),
            Route("/applied", applied),
            Route("/stats", get_stats),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("dsn")
    parser.add_argument("--lose-every", type=int, default=0)
    args = parser.parse_args()
    app = create_app(args.dsn, args.lose_every)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
