"""The stack manifest: what runs where, written by ``loadkit stack up`` and read by every later
command (``status``, ``down``, runs, the chaos controller, ``chaos rollback``).

It is JSON in ``<stack dir>/manifest.json``, rewritten atomically after each component starts, so a
``stack up`` killed half-way still leaves a manifest that ``stack down`` can clean up from. It holds
the stack's secrets — the wallets' tokens, the database superuser's password (in ``postgres``) and
the password of the wallets' own least-privilege database role — so it is readable by its owner
only::

    manifest = StackManifest.read(Path(".loadkit/stack"))
    print(manifest.wallets[0].client_url)
"""

from __future__ import annotations

import json
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadkit.errors import StackNotRunning
from loadkit.stack.postgres import PostgresInfo
from loadkit.stack.process import ProcessInfo

MANIFEST_VERSION = 1
FILENAME = "manifest.json"


@dataclass
class ProxyInfo:
    """One Toxiproxy proxy: a link a network fault can be put on."""

    name: str
    listen_port: int
    upstream: str
    link: str  # what the link joins, e.g. "wallet-1 -> postgres" or "client -> wallet-1"

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProxyInfo:
        return cls(str(d["name"]), int(d["listen_port"]), str(d["upstream"]), str(d["link"]))


@dataclass
class WalletInfo:
    """One reference-wallet instance, the proxy in front of it and its proxy to the database."""

    name: str
    port: int
    client_proxy: str
    client_port: int
    db_proxy: str
    dsn: str
    process: ProcessInfo | None = None
    #: the stack CA's certificate when the instance serves HTTPS (``stack up --tls``)
    ca: str | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.ca else "http"

    @property
    def url(self) -> str:
        """The instance itself, bypassing Toxiproxy."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def client_url(self) -> str:
        """Through the client-side proxy: what load should use, so client network faults apply
        (Toxiproxy is TCP: TLS passes through)."""
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """``httpx``'s ``verify=`` for this instance: the stack CA's context over HTTPS."""
        if not self.ca:
            return True
        from loadkit.stack.tls import verify_context

        return verify_context(self.ca)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in vars(self).items() if k != "process"}
        d["process"] = self.process.to_dict() if self.process else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WalletInfo:
        proc = d.get("process")
        return cls(
            name=str(d["name"]),
            port=int(d["port"]),
            client_proxy=str(d["client_proxy"]),
            client_port=int(d["client_port"]),
            db_proxy=str(d["db_proxy"]),
            dsn=str(d["dsn"]),
            process=ProcessInfo.from_dict(proc) if proc else None,
            ca=str(d["ca"]) if d.get("ca") else None,
        )


@dataclass
class StackManifest:
    """Everything later commands need to find and drive a running reference stack."""

    stack_dir: str
    created_at: float
    status: str = "starting"  # starting | running | stopping
    backend: str = "process"
    database: str = "wallet"
    external_dsn: str | None = None
    postgres: PostgresInfo | None = None
    toxiproxy_port: int | None = None
    toxiproxy: ProcessInfo | None = None
    wallets: list[WalletInfo] = field(default_factory=list)
    proxies: list[ProxyInfo] = field(default_factory=list)
    admin_token: str = ""
    token_secret: str = ""
    #: reads the wallets' test "SMS" outbox (load journeys complete OTP steps with it)
    otp_outbox_token: str = ""
    #: the database role the wallets connect as ("" : the DSN's own, e.g. an external server)
    wallet_db_user: str = ""
    wallet_db_password: str = ""
    #: the stack CA's certificate (``ca.pem``) when the wallets serve HTTPS; None: plain HTTP
    ca: str | None = None
    seed: dict[str, Any] = field(default_factory=dict)
    version: int = MANIFEST_VERSION

    @property
    def path(self) -> Path:
        return Path(self.stack_dir) / FILENAME

    def proxy(self, name: str) -> ProxyInfo:
        for p in self.proxies:
            if p.name == name:
                return p
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "stack_dir": self.stack_dir,
            "created_at": self.created_at,
            "status": self.status,
            "backend": self.backend,
            "database": self.database,
            "external_dsn": self.external_dsn,
            "postgres": self.postgres.to_dict() if self.postgres else None,
            "toxiproxy_port": self.toxiproxy_port,
            "toxiproxy": self.toxiproxy.to_dict() if self.toxiproxy else None,
            "wallets": [w.to_dict() for w in self.wallets],
            "proxies": [p.to_dict() for p in self.proxies],
            "admin_token": self.admin_token,
            "token_secret": self.token_secret,
            "otp_outbox_token": self.otp_outbox_token,
            "wallet_db_user": self.wallet_db_user,
            "wallet_db_password": self.wallet_db_password,
            "ca": self.ca,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StackManifest:
        pg = d.get("postgres")
        tp = d.get("toxiproxy")
        return cls(
            version=int(d.get("version", MANIFEST_VERSION)),
            stack_dir=str(d["stack_dir"]),
            created_at=float(d["created_at"]),
            status=str(d.get("status", "running")),
            backend=str(d.get("backend", "process")),
            database=str(d.get("database", "wallet")),
            external_dsn=d.get("external_dsn"),
            postgres=PostgresInfo.from_dict(pg) if pg else None,
            toxiproxy_port=d.get("toxiproxy_port"),
            toxiproxy=ProcessInfo.from_dict(tp) if tp else None,
            wallets=[WalletInfo.from_dict(w) for w in d.get("wallets", [])],
            proxies=[ProxyInfo.from_dict(p) for p in d.get("proxies", [])],
            admin_token=str(d.get("admin_token", "")),
            token_secret=str(d.get("token_secret", "")),
            otp_outbox_token=str(d.get("otp_outbox_token", "")),
            wallet_db_user=str(d.get("wallet_db_user", "")),
            wallet_db_password=str(d.get("wallet_db_password", "")),
            ca=str(d["ca"]) if d.get("ca") else None,
            seed=dict(d.get("seed", {})),
        )

    def write(self) -> None:
        """Write atomically (temp file + rename), owner-readable only."""
        target = self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".manifest-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(self.to_dict(), fh, indent=2)
                fh.write("\n")
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def read(cls, stack_dir: Path) -> StackManifest:
        path = stack_dir / FILENAME
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise StackNotRunning(
                f"no stack in {stack_dir} (no {FILENAME}); start one with `loadkit stack up`"
            ) from None
        except (OSError, json.JSONDecodeError) as exc:
            raise StackNotRunning(f"unreadable stack manifest {path}: {exc}") from exc
        return cls.from_dict(data)
