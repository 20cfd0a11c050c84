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
from loadkit.wallet.runtime import Handler, WalletRuntime
from loadkit.wallet.unsafe import announce

_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "BODY_TOO_LARGE"}


def create_app(config: WalletConfig) -> Starlette:
    """A wallet instance as a Starlette app; the runtime is at ``app.state.wallet``."""
    rt = WalletRuntime(config)
    api = PublicApi(rt)
    admin = AdminApi(rt)
    g = rt.guard

    def admin_route(
        path: str, name: str, handler: Handler, method: str, tokens: tuple[str, ...] = ()
    ) -> Route:
        endpoint = g(f"admin_{name}", handler, public=False, admin=True, tokens=tokens)
        return Route(path, endpoint, methods=[method])

    outbox_tokens = (config.otp_outbox_token,) if config.otp_outbox_token else ()

    def probe(path: str, name: str, handler: Handler) -> Route:
        return Route(path, g(name, handler, public=False), methods=["GET"])

    routes = [
        Route("/v1/login", g("login", api.login), methods=["POST"]),
        Route("/v1/balance", g("balance", api.balance), methods=["GET"]),
        Route("/v1/topup", g("topup", api.topup, movement="topup"), methods=["POST"]),
        Route("/v1/payments", g("payments", api.payment, movement="payment"), methods=["POST"]),
        Route("/v1/transfers", g("transfers", api.transfer, movement="transfer"), methods=["POST"]),
        Route("/v1/transactions", g("transactions", api.transactions), methods=["GET"]),
        Route("/v1/directory/{name}", g("directory", api.directory), methods=["GET"]),
        admin_route("/admin/maintenance", "maintenance", admin.maintenance, "POST"),
        admin_route("/admin/policy", "policy", admin.policy, "POST"),
        admin_route("/admin/limits", "limits", admin.limits, "POST"),
        admin_route("/admin/state", "state", admin.state, "GET"),
        admin_route("/admin/seed", "seed", admin.seed, "POST"),
        admin_route("/admin/invariants", "invariants", admin.invariants, "GET"),
        admin_route("/admin/movements", "movements", admin.movements, "GET"),
        admin_route("/admin/accounts/{account_id:int}", "account", admin.account, "GET"),
        admin_route("/admin/anomalies", "anomalies", admin.anomalies, "GET"),
        admin_route(
            "/admin/otp-outbox/{challenge}", "otp_outbox", admin.otp_outbox, "GET", outbox_tokens
        ),
        probe("/healthz", "healthz", admin.healthz),
        probe("/readyz", "readyz", admin.readyz),
        probe("/metrics", "metrics", admin.metrics),
        probe("/openapi.json", "openapi", admin.openapi),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if config.unsafe is not None:
            announce(config.unsafe, config.name)
        warm = asyncio.ensure_future(rt.ledger.warm_up(4))
        if rt.write_behind is not None:
            rt.write_behind.start()
        try:
            yield
        finally:
            warm.cancel()
            if rt.write_behind is not None:
                await rt.write_behind.close()
            await rt.ledger.close()

    async def unrouted(request: Request, exc: Exception) -> Response:
        """404/405 from the router; and, as a last resort, anything that escaped a guard."""
        start = time.perf_counter()
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 500:
            rt.metrics.unhandled.inc()
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
        exception_handlers={HTTPException: unrouted, Exception: unrouted},
    )
    app.router.redirect_slashes = False
    app.state.wallet = rt
    return app
