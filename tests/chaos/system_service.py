"""A team's own little shop API for game-day tests: it runs on a test host (a network
namespace), keeps its orders in a PostgreSQL it reaches through the team's own Toxiproxy, and
answers 503 while a feature-flag file says it is in maintenance (what a command fault flips).

    python -m tests.chaos.system_service --bind 198.18.0.2 --port 8080 --dsn DSN --flag FILE

``GET /orders/{id}`` reads one order, ``POST /orders/{id}/pay`` writes it (row locks and
read-only mode hold it up or refuse it), ``GET /healthz`` answers 200.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

APPLICATION = "shop-api"


def build(dsn: str, flag: str) -> Starlette:
    pool: list[asyncpg.Pool] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool.append(
            await asyncpg.create_pool(
                dsn,
                min_size=2,
                max_size=8,
                command_timeout=2,
                server_settings={"application_name": APPLICATION},
            )
        )
        yield
        await pool[0].close()

    def maintenance() -> Response | None:
        if os.path.exists(flag):
            return JSONResponse({"cause": "maintenance"}, 503, headers={"Retry-After": "5"})
        return None

    async def read(request: Request) -> Response:
        if (closed := maintenance()) is not None:
            return closed
        try:
            row = await pool[0].fetchrow(
                "SELECT id, status FROM orders WHERE id = $1", int(request.path_params["id"])
            )
        except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
            return JSONResponse({"cause": "db_unavailable", "detail": str(exc)[:80]}, 503)
        if row is None:
            return JSONResponse({"cause": "not_found"}, 404)
        return JSONResponse(dict(row))

    async def pay(request: Request) -> Response:
        if (closed := maintenance()) is not None:
            return closed
        try:
            await pool[0].execute(
                "UPDATE orders SET status = 'paid' WHERE id = $1", int(request.path_params["id"])
            )
        except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
            return JSONResponse({"cause": "db_unavailable", "detail": str(exc)[:80]}, 503)
        return JSONResponse({"ok": True})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/orders/{id:int}", read),
            Route("/orders/{id:int}/pay", pay, methods=["POST"]),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--flag", required=True)
    args = parser.parse_args()
    uvicorn.run(build(args.dsn, args.flag), host=args.bind, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
