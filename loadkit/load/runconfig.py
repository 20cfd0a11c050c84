"""``run-config.json``: what every Locust process of a run needs, and how to start them.

The orchestrator writes it (:meth:`RunConfig.write`), the locustfile reads it
(``--loadkit-config``).
This module imports neither Locust nor gevent, so the orchestrator (which must not) can use it::

    config = RunConfig(run_id="r1", run_dir="/abs/reports/r1", profile_path="/abs/smoke.yaml",
                       target=Target(urls=("http://127.0.0.1:41001",)))
    path = config.write()                      # RUN_DIR/run-config.json
    https = Target(urls=("https://127.0.0.1:8443",), tls=Tls(ca="/abs/ca.pem"))
    argv = locust_argv(path, role="standalone")
    subprocess.Popen([sys.executable, "-m", "locust", *argv])

The format is documented in docs/run-directory.md.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal

from loadkit.errors import ConfigError
from loadkit.load.tls import Tls
from loadkit.profile.model import DataFiles, Profile, load_profile
from loadkit.rundir import RUN_CONFIG
from loadkit.safety import Allowlist

SCHEMA: Final = "loadkit.run-config/v1"
FILENAME: Final = RUN_CONFIG
#: the file to give ``locust -f`` (found without importing it: that would start gevent)
LOCUSTFILE: Final = Path(__file__).with_name("locustfile.py")
#: the custom Locust argument naming the run config
CONFIG_ARG: Final = "--loadkit-config"


@dataclass(frozen=True)
class WalletTarget:
    """The reference wallet's seeded identities: ``users`` and ``merchants`` as
    ``(account_id, name)`` pairs, and the password every seeded user shares;
    ``otp_outbox_token`` reads the test "SMS" outbox (OTP steps need it)."""

    password: str
    users: tuple[tuple[int, str], ...]
    merchants: tuple[tuple[int, str], ...] = ()
    otp_outbox_token: str = ""


@dataclass(frozen=True)
class Target:
    """Where load goes. ``kind`` ``reference`` (the wallet stack, ``wallet`` required) or ``http``.
    ``network`` maps a profile's network class to the URLs its users go through.

    ``instances`` names the instance behind a URL in the timeline (the reference stack's
    ``wallet-1``…); a URL without a name is named by itself, and a network class's URL by the
    target URL it stands for (``network[cls][i]`` goes to ``urls[i]``).

    ``https://`` URLs speak TLS with ``tls_by_url[url]``, else ``tls``, else :class:`Tls`'s
    defaults (verified against the system's CAs); ``http://`` URLs ignore both. A URL that
    reaches an https service through a TCP proxy (a network class's Toxiproxy) is ``https://``
    too, with the service's host as ``server_name``::

        Target(urls=("https://shop.test.internal",), tls=Tls(ca="/abs/ca.pem"),
               network={"weak-4g": ("https://127.0.0.1:41101",)},
               tls_by_url={"https://127.0.0.1:41101":
                           Tls(ca="/abs/ca.pem", server_name="shop.test.internal")})
    """

    urls: tuple[str, ...]
    kind: Literal["reference", "http"] = "http"
    network: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    wallet: WalletTarget | None = None
    tls: Tls | None = None
    tls_by_url: Mapping[str, Tls] = field(default_factory=dict)
    #: headers every declarative request to it carries, as templates (``{env.NAME}`` only:
    #: rendered where the request is sent, so a token never lands in a file)
    headers: Mapping[str, str] = field(default_factory=dict)
    instances: Mapping[str, str] = field(default_factory=dict)

    def all_urls(self) -> list[str]:
        return [*self.urls, *(u for urls in self.network.values() for u in urls)]

    def instance_of(self, url: str) -> str:
        """The timeline's name for the instance behind ``url``::

        Target(urls=("http://127.0.0.1:41001",)).instance_of("http://127.0.0.1:41001")
        # 'http://127.0.0.1:41001'
        """
        name = self.instances.get(url)
        if name:
            return name
        for urls in self.network.values():
            if url in urls:
                i = urls.index(url)
                if i < len(self.urls) and self.urls[i] != url:
                    return self.instance_of(self.urls[i])
        return url

    def tls_for(self, url: str) -> Tls | None:
        """The TLS settings of ``url``: ``None`` for ``http://``."""
        if not url.startswith("https://"):
            return None
        return self.tls_by_url.get(url) or self.tls or Tls()

    def all_tls(self) -> list[tuple[str, Tls]]:
        """Every https URL with its settings (what to check before a run, or warn about)."""
        out = []
        for url in dict.fromkeys(self.all_urls()):
            tls = self.tls_for(url)
            if tls is not None:
                out.append((url, tls))
        return out

    @property
    def insecure_urls(self) -> list[str]:
        """The https URLs whose certificates are not verified (``verify: false``)."""
        return [url for url, tls in self.all_tls() if tls.insecure]

    def inlined(self) -> Target:
        """The same target with every TLS file's contents inline (see :meth:`Tls.inline`)."""
        return replace(
            self,
            tls=None if self.tls is None else self.tls.inline(),
            tls_by_url={u: t.inline() for u, t in self.tls_by_url.items()},
        )

    def to_dict(self, *, inline: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "urls": list(self.urls),
            "network": {k: list(v) for k, v in self.network.items()},
        }
        if self.tls is not None:
            data["tls"] = self.tls.to_dict(inline=inline)
        if self.tls_by_url:
            data["tls_by_url"] = {u: t.to_dict(inline=inline) for u, t in self.tls_by_url.items()}
        if self.headers:
            data["headers"] = dict(self.headers)
        if self.instances:
            data["instances"] = dict(self.instances)
        if self.wallet is not None:
            w = self.wallet
            data["wallet"] = {
                "password": w.password,
                "users": [list(u) for u in w.users],
                "merchants": [list(m) for m in w.merchants],
                "otp_outbox_token": w.otp_outbox_token,
            }
        return data

    @classmethod
    def from_dict(cls, t: Mapping[str, Any]) -> Target:
        wallet = t.get("wallet")
        return cls(
            urls=tuple(str(u) for u in t["urls"]),
            kind="reference" if t.get("kind") == "reference" else "http",
            network={str(k): tuple(map(str, v)) for k, v in t.get("network", {}).items()},
            wallet=None
            if wallet is None
            else WalletTarget(
                password=str(wallet["password"]),
                users=tuple((int(a), str(n)) for a, n in wallet["users"]),
                merchants=tuple((int(a), str(n)) for a, n in wallet.get("merchants", ())),
                otp_outbox_token=str(wallet.get("otp_outbox_token", "")),
            ),
            tls=None if t.get("tls") is None else Tls.from_dict(t["tls"]),
            tls_by_url={str(u): Tls.from_dict(v) for u, v in t.get("tls_by_url", {}).items()},
            headers={str(k): str(v) for k, v in t.get("headers", {}).items()},
            instances={str(u): str(n) for u, n in t.get("instances", {}).items()},
        )

    def check(self, allowlist: Allowlist, what: str) -> None:
        """Every URL allowed, TLS settings consistent (ConfigError naming ``what``)."""
        if not self.urls:
            raise ConfigError(f"run config: {what}.urls is empty")
        for url in self.all_urls():
            allowlist.check_url(url, what=f"{what} URL")
        urls = set(self.all_urls())
        for url in self.tls_by_url:
            if url not in urls:
                raise ConfigError(f"run config: {what}.tls_by_url has {url!r}, not a target URL")
        for url, tls in self.all_tls():
            problems = tls.problems()
            if problems:
                raise ConfigError(f"run config: TLS of {url}: {problems[0]}")
        for name, value in self.headers.items():
            bad = [
                v for v in re.findall(r"\{([^{}]*)\}", value) if not v.strip().startswith("env.")
            ]
            if bad or "\r" in value or "\n" in value or ":" in name:
                raise ConfigError(f"run config: {what}.headers[{name!r}] is not a header template")


@dataclass(frozen=True)
class RunConfig:
    """The contents of ``run-config.json`` (schema ``loadkit.run-config/v1``)."""

    run_id: str
    run_dir: str
    profile_path: str
    target: Target
    time_scale: float | None = None
    workers: int = 0
    drain_s: float = 10.0
    #: allowlist entries beyond loopback (``--allow``, a system file's ``allow:``)
    allow: tuple[str, ...] = ()
    #: the journeys to run, by tag (``--tags``, ``--exclude-tags``; see ``Profile.with_tags``)
    tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    #: a system file's services by name (``--system``), ``target`` being its first; a journey's
    #: ``target: NAME`` goes to ``services[NAME]``
    services: Mapping[str, Target] = field(default_factory=dict)

    def service(self, name: str | None) -> Target:
        """The target a journey with ``target: name`` goes to (``target`` for None)."""
        if name is None:
            return self.target
        found = self.services.get(name)
        if found is None:
            known = ", ".join(self.services) or "none: the run has no --system"
            raise ConfigError(f"run config: no service named {name!r} (services: {known})")
        return found

    def validate(self) -> None:
        """Raise :class:`ConfigError` for a config no Locust process could run (a URL the
        allowlist does not cover included: every Locust process checks again)."""
        allowlist = Allowlist.parse(self.allow, source="run config: allow")
        self.target.check(allowlist, "target")
        for name, service in self.services.items():
            service.check(allowlist, f"services.{name}")
        if self.target.kind == "reference":
            wallet = self.target.wallet
            if wallet is None or not wallet.users:
                raise ConfigError("run config: a reference target needs target.wallet.users")
        if self.workers < 0:
            raise ConfigError(f"run config: workers must be 0 or more, got {self.workers}")
        if self.drain_s < 0:
            raise ConfigError(f"run config: drain_s must be 0 or more, got {self.drain_s}")

    def to_dict(self, *, inline: bool = False) -> dict[str, Any]:
        """The JSON form; ``inline`` adds the TLS files' contents (for the ``loadkit_start``
        message to workers, never for ``run-config.json``: a client key stays in its file)."""
        target = self.target.to_dict(inline=inline)
        return {
            "schema": SCHEMA,
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "profile_path": self.profile_path,
            "time_scale": self.time_scale,
            "workers": self.workers,
            "target": target,
            "drain_s": self.drain_s,
            "allow": list(self.allow),
            "tags": list(self.tags),
            "exclude_tags": list(self.exclude_tags),
            **(
                {"services": {n: t.to_dict(inline=inline) for n, t in self.services.items()}}
                if self.services
                else {}
            ),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        """Parse (and :meth:`validate`) the JSON form; :class:`ConfigError` when malformed."""
        if data.get("schema") != SCHEMA:
            raise ConfigError(f"run config: expected schema {SCHEMA!r}, got {data.get('schema')!r}")
        try:
            t = data["target"]
            config = cls(
                run_id=str(data["run_id"]),
                run_dir=str(data["run_dir"]),
                profile_path=str(data["profile_path"]),
                time_scale=None if data.get("time_scale") is None else float(data["time_scale"]),
                workers=int(data.get("workers", 0)),
                drain_s=float(data.get("drain_s", 10.0)),
                allow=tuple(str(a) for a in data.get("allow", ())),
                tags=tuple(str(t) for t in data.get("tags", ())),
                exclude_tags=tuple(str(t) for t in data.get("exclude_tags", ())),
                target=Target.from_dict(t),
                services={str(n): Target.from_dict(v) for n, v in data.get("services", {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"run config: malformed ({type(exc).__name__}: {exc})") from None
        config.validate()
        return config

    @classmethod
    def read(cls, path: str | Path) -> RunConfig:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read run config {path}: {exc}") from None
        return cls.from_dict(data)

    def inlined(self) -> RunConfig:
        """This config with the TLS files' contents inline: what the master sends to workers
        (read where the files are; :class:`ConfigError` when one cannot be read)."""
        return replace(
            self,
            target=self.target.inlined(),
            services={n: t.inlined() for n, t in self.services.items()},
        )

    def write(self, path: str | Path | None = None) -> Path:
        """Write it (default ``RUN_DIR/run-config.json``), atomically; returns the path."""
        target = Path(path) if path is not None else Path(self.run_dir) / FILENAME
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        os.replace(tmp, target)
        return target


def run_profile(config: RunConfig, data: DataFiles = True, path: Path | None = None) -> Profile:
    """The profile a Locust process runs: the file ``config`` names (or ``path``), with the
    run's tag selection and time scale."""
    profile = load_profile(path or Path(config.profile_path), data=data)
    profile = profile.with_tags(config.tags, config.exclude_tags)
    return profile if config.time_scale is None else profile.with_time_scale(config.time_scale)


def data_files(profile: Profile, path: Path) -> dict[str, str]:
    """The text of each data file of ``profile`` (read from ``path``), by the name the profile
    gives it: what the master sends workers with the profile's text."""
    return {s.file: (path.parent / s.file).read_text(encoding="utf-8") for s in profile.data}


def sent_profile(config: RunConfig, text: str, name: str, data: Mapping[str, str]) -> Profile:
    """The profile a worker was sent (its text, file name and data files' text): read from the
    path the config names when that holds the same text (a local worker), else from a private
    copy (a remote one); the data files always come from what was sent."""
    files: DataFiles = data or True
    path = Path(config.profile_path)
    try:
        if path.read_text() == text:
            return run_profile(config, files)
    except OSError:
        pass
    copy = Path(tempfile.mkdtemp(prefix="loadkit-profile-")) / name
    copy.write_text(text)
    return run_profile(config, files, copy)


Role = Literal["standalone", "master", "worker"]


def locust_argv(
    config_path: str | Path,
    *,
    role: Role = "standalone",
    workers: int = 0,
    master_host: str = "127.0.0.1",
    master_port: int = 5557,
    csv_prefix: str | Path | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """Arguments after ``python -m locust`` for one process of a run.

    ``standalone`` and ``master`` run headless with one driver user per load process and write
    Locust's CSV files (``csv_prefix``, default ``RUN_DIR/locust``); a ``worker`` connects to
    ``master_host:master_port`` and needs nothing else (the master sends it the run config).
    """
    path = Path(config_path)
    base = ["-f", str(LOCUSTFILE), CONFIG_ARG, str(path)]
    if role == "worker":
        return [*base, "--worker", "--master-host", master_host, "--master-port", str(master_port)]
    prefix = Path(csv_prefix) if csv_prefix is not None else path.parent / "locust"
    users = max(workers, 1) if role == "master" else 1
    argv = [*base, "--headless", "--only-summary", "-u", str(users), "-r", str(users)]
    argv += ["--csv", str(prefix)]
    if role == "master":
        argv += [
            "--master",
            "--master-bind-host",
            master_host,
            "--master-bind-port",
            str(master_port),
            "--expect-workers",
            str(workers),
        ]
    return [*argv, *extra]
