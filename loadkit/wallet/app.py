"""The wallet's ASGI application: routes, lifespan, and problem+json for unrouted requests.

::

    app = create_app(WalletConfig(dsn=..., secret=..., admin_token=...))
    uvicorn.run(app, host="127.0.0.1", port=8001)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from loadkit.wallet.admin import AdminApi
from loadkit.wallet.api import PublicApi
from loadkit.wallet.config import WalletConfig
from loadkit.wallet.problems import Problem
from loadkit.wallet.runtime import WalletRuntime

_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "BODY_TOO_LARGE"}


def create_app(config: WalletConfig) -> Starlette:
    """A wallet instance as a Starlette app; the runtime is at ``app.state.wallet``."""
    rt = WalletRuntime(config)
    api = PublicApi(rt)
    admin = AdminApi(rt)
    g = rt.guard

    routes = [
        Route("/v1/login", g("login", api.login), methods=["POST"]),
        Route("/v1/balance", g("balance", api.balance), methods=["GET"]),
        Route("/v1/topup", g("topup", api.topup, movement=True), methods=["POST"]),
        Route("/v1/payments", g("payments", api.payment, movement=True), methods=["POST"]),
        Route("/v1/transfers", g("transfers", api.transfer, movement=True), methods=["POST"]),
        Route("/v1/transactions", g("transactions", api.transactions), methods=["GET"]),
        Route("/v1/otp/{challenge}", g("otp", api.otp), methods=["GET"]),
        Route("/v1/directory/{name}", g("directory", api.directory), methods=["GET"]),
        Route(
            "/admin/maintenance",
            g("admin_maintenance", admin.maintenance, public=False, admin=True),
            methods=["POST"],
        ),
        Route(
            "/admin/policy",
            g("admin_policy", admin.policy, public=False, admin=True),
            methods=["POST"],
        ),
        Route(
            "/admin/limits",
            g("admin_limits", admin.limits, public=False, admin=True),
            methods=["POST"],
        ),
        Route(
            "/admin/state", g("admin_state", admin.state, public=False, admin=True), methods=["GET"]
        ),
        Route(
            "/admin/seed", g("admin_seed", admin.seed, public=False, admin=True), methods=["POST"]
        ),
        Route(
            "/admin/invariants",
            g("admin_invariants", admin.invariants, public=False, admin=True),
            methods=["GET"],
        ),
        Route(
            "/admin/accounts/{account_id:int}",
            g("admin_account", admin.account, public=False, admin=True),
            methods=["GET"],
        ),
        Route("/healthz", g("healthz", admin.healthz, public=False), methods=["GET"]),
        Route("/readyz", g("readyz", admin.readyz, public=False), methods=["GET"]),
        Route("/metrics", g("metrics", admin.metrics, public=False), methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        warm = asyncio.ensure_future(rt.ledger.warm_up(4))
        try:
            yield
        finally:
            warm.cancel()
            await rt.ledger.close()

    async def unrouted(request: Request, exc: Exception) -> Response:
        start = time.perf_counter()
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
        detail = f"{request.method} {request.url.path}: " + (
            exc.detail if isinstance(exc, HTTPException) else "internal error"
        )
        response = Problem(
            status, _CODES.get(status, "HTTP_ERROR"), detail, headers=headers
        ).response()
        rt.metrics.observe("unrouted", request.method, status, time.perf_counter() - start)
        return response

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: unrouted},
    )
    app.router.redirect_slashes = False
    app.state.wallet = rt
    return app
