"""Command line of the reference wallet (the stack starts instances this way)::

    python -m loadkit.wallet serve --port 8001 --name wallet-1 \\
        --dsn postgresql://wallet_app@127.0.0.1:6001/wallet \\
        [--pool-size 20] [--max-inflight 256] [--policy normal] \\
        [--rate-limit R] [--pool-timeout 0.5] [--query-timeout 2] [--request-deadline 3] \\
        [--tls-cert server.pem --tls-key server.key] \\
        [--unsafe ack-before-commit|ignore-idempotency|misapply]   # deliberately broken
    python -m loadkit.wallet migrate --dsn DSN [--grant-to wallet_app]
    python -m loadkit.wallet seed --dsn DSN --users 100 --merchants 10 --balance 1000000
    python -m loadkit.wallet openapi [--out loadkit/wallet/openapi.json]

``serve`` reads its secrets from the environment, never from the command line (every local user
can read a command line): LOADKIT_WALLET_SECRET and LOADKIT_WALLET_ADMIN_TOKEN (required: exit 2
without them), LOADKIT_WALLET_DB_PASSWORD (the password of the DSN's role) and
LOADKIT_WALLET_OTP_OUTBOX_TOKEN (turns the test "SMS" outbox on). With ``--tls-cert`` and
``--tls-key`` it serves HTTPS only. It binds 127.0.0.1 unless told otherwise and exits 0 after a
graceful shutdown on SIGTERM or SIGINT. Exit codes: 0 ok, 1 failed, 2 usage, 3 database
unreachable or port in use.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import FrameType

import orjson

from loadkit.errors import ExitCode
from loadkit.wallet.config import WalletConfig, optional_from_env, secrets_from_env
from loadkit.wallet.contract import (
    DB_PASSWORD_ENV,
    DEFAULT_PASSWORD,
    OTP_OUTBOX_TOKEN_ENV,
    PolicyName,
    UnsafeMode,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadkit.wallet", description="The loadkit reference wallet service."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run one wallet instance (HTTP on --host:--port)")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8001)
    serve.add_argument("--dsn", required=True, help="PostgreSQL DSN of the wallet database")
    serve.add_argument("--name", default="wallet", help="instance name (in metrics and /admin)")
    serve.add_argument("--pool-size", type=int, default=20, help="max database connections")
    serve.add_argument("--max-inflight", type=int, default=256, help="503 beyond this")
    serve.add_argument(
        "--policy", choices=[p.value for p in PolicyName], default=PolicyName.NORMAL.value
    )
    serve.add_argument(
        "--rate-limit", type=float, default=None, help="instance-wide requests/s (default off)"
    )
    serve.add_argument("--pool-timeout", type=float, default=0.5, help="seconds")
    serve.add_argument("--query-timeout", type=float, default=2.0, help="seconds")
    serve.add_argument("--request-deadline", type=float, default=3.0, help="seconds")
    serve.add_argument("--log-level", default="warning")
    serve.add_argument("--tls-cert", help="PEM certificate (chain) to serve HTTPS with")
    serve.add_argument("--tls-key", help="PEM private key of --tls-cert")
    serve.add_argument(
        "--unsafe",
        choices=[m.value for m in UnsafeMode],
        default=None,
        help="DELIBERATELY UNSAFE mode, to show that loadkit's integrity check catches it",
    )

    migrate = sub.add_parser("migrate", help="create or upgrade the schema (idempotent)")
    migrate.add_argument("--dsn", required=True)
    migrate.add_argument(
        "--grant-to", metavar="ROLE", help="give this existing role the service's rights"
    )

    seed = sub.add_parser("seed", help="create test users and merchants; prints JSON counts")
    seed.add_argument("--dsn", required=True)
    seed.add_argument("--users", type=int, default=100)
    seed.add_argument("--merchants", type=int, default=10)
    seed.add_argument("--balance", type=int, default=1_000_000, help="fen per new user")
    seed.add_argument("--password", default=DEFAULT_PASSWORD)

    openapi = sub.add_parser("openapi", help="print (or write) the API's OpenAPI document")
    openapi.add_argument("--out", help="write it to this file instead of stdout")
    return parser


def _fail(message: str, code: ExitCode) -> int:
    print(f"loadkit.wallet: error: {message}", file=sys.stderr)
    return int(code)


def _serve(args: argparse.Namespace) -> int:
    try:
        secret, admin_token = secrets_from_env()
    except ValueError as exc:
        return _fail(str(exc), ExitCode.USAGE)
    if args.request_deadline <= 0 or args.pool_timeout <= 0 or args.query_timeout <= 0:
        return _fail("timeouts and the deadline must be positive", ExitCode.USAGE)
    tls = _tls_files(args.tls_cert, args.tls_key)
    if isinstance(tls, str):
        return _fail(tls, ExitCode.USAGE)
    try:
        config = WalletConfig(
            dsn=args.dsn,
            secret=secret,
            admin_token=admin_token,
            name=args.name,
            pool_size=args.pool_size,
            max_inflight=args.max_inflight,
            policy=PolicyName(args.policy),
            rate_limit=args.rate_limit,
            pool_timeout=args.pool_timeout,
            query_timeout=args.query_timeout,
            request_deadline=args.request_deadline,
            unsafe=UnsafeMode(args.unsafe) if args.unsafe else None,
            db_password=optional_from_env(DB_PASSWORD_ENV),
            otp_outbox_token=optional_from_env(OTP_OUTBOX_TOKEN_ENV),
        )
    except ValueError as exc:
        return _fail(str(exc), ExitCode.USAGE)

    import uvicorn  # only `serve` needs the server

    from loadkit.wallet.app import create_app

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    class Server(uvicorn.Server):
        """uvicorn re-raises the signal it stopped for once it has shut down, so the process
        dies "by SIGTERM" (and by KeyboardInterrupt, with a traceback, on SIGINT). After a
        graceful shutdown the wallet exits 0 instead: that is what supervisors expect."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()

    server = Server(
        uvicorn.Config(
            create_app(config),
            host=args.host,
            port=args.port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_level=args.log_level.lower(),
            server_header=False,
            timeout_graceful_shutdown=5,
            backlog=4096,
            ssl_certfile=tls[0] if tls else None,
            ssl_keyfile=tls[1] if tls else None,
        )
    )
    server.run()  # returns on SIGTERM/SIGINT after a graceful shutdown
    return int(ExitCode.OK) if server.started else int(ExitCode.ENVIRONMENT)


def _tls_files(cert: str | None, key: str | None) -> tuple[str, str] | str | None:
    """``(cert, key)``, None for plain HTTP, or what is wrong with them (a usage error)."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        return "--tls-cert and --tls-key go together"
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        return f"TLS: no such file: {exc.filename}"
    except (OSError, ssl.SSLError) as exc:
        return f"TLS: cannot use {cert} with {key}: {exc}"
    return cert, key


def _openapi(out: str | None) -> int:
    from loadkit.wallet.openapi import document_text

    text = document_text()
    if out is None:
        sys.stdout.write(text)
    else:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
    return int(ExitCode.OK)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "openapi":
        return _openapi(args.out)

    from loadkit.wallet import schema

    try:
        if args.command == "migrate":
            schema.migrate(args.dsn, grant_to=args.grant_to)
            print("wallet schema is up to date")
            return int(ExitCode.OK)
        counts = schema.seed(
            args.dsn, args.users, args.merchants, args.balance, password=args.password
        )
    except ValueError as exc:
        return _fail(str(exc), ExitCode.USAGE)
    except (OSError, TimeoutError) as exc:
        return _fail(f"cannot reach the database: {exc}", ExitCode.ENVIRONMENT)
    except Exception as exc:  # asyncpg errors: name them, no traceback
        return _fail(f"{type(exc).__name__}: {exc}", ExitCode.FAILED)
    print(orjson.dumps(counts).decode())
    return int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
