"""The house stays as docs/design.md draws it: every import inside loadkit (at module level or
in a function, under TYPE_CHECKING too) obeys the table "package | may import" of
docs/design.md, and there is no cycle between packages."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "loadkit"
DESIGN = ROOT / "docs" / "design.md"


def rules() -> dict[str, set[str]]:
    """``package → what it may import`` from docs/design.md's table."""
    text = DESIGN.read_text()
    start = text.index("<!-- layering rules")
    table: dict[str, set[str]] = {}
    for line in text[start:].splitlines()[1:]:
        if not line.startswith("|"):
            if table:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        name = cells[0].strip("`")
        if name in ("package", "---") or set(name) <= {"-"}:
            continue
        table[name] = {x.strip() for x in cells[1].split(",") if x.strip()}
    return table


def layer_of(module: str) -> str:
    """``loadkit.run.orchestrator`` → ``run``; ``loadkit.safety`` → ``safety``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imports_of(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, imported module, names)`` for every loadkit import in ``path``."""
    mod = module_name(path)
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "loadkit":
                    found.append((node.lineno, alias.name, []))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".") if is_package else mod.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != "loadkit":
                continue
            names = [a.name for a in node.names]
            submodules = [f"{target}.{n}" for n in names if is_module(f"{target}.{n}")]
            if submodules:
                found.extend((node.lineno, s, []) for s in submodules)
                names = [n for n in names if f"{target}.{n}" not in submodules]
                if not names:
                    continue
            found.append((node.lineno, target, names))
    return found


def allowed(table: dict[str, set[str]], src: str, target: str, names: list[str]) -> bool:
    dst = layer_of(target)
    if dst == src:
        return True
    if target == "loadkit" and names == ["__version__"]:
        return True
    may = table[src]
    if dst in may:
        return True
    # a single module may be named: "wallet.contract"
    return any(
        target == f"loadkit.{entry}" or target.startswith(f"loadkit.{entry}.") for entry in may
    )


def test_the_rules_cover_every_package() -> None:
    table = rules()
    layers = {layer_of(module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert layers <= set(table), f"docs/design.md has no row for {sorted(layers - set(table))}"
    for src, targets in table.items():
        unknown = {t.split(".")[0] for t in targets} - set(table)
        assert not unknown, f"row {src}: unknown packages {unknown}"


def test_every_import_follows_docs_design() -> None:
    table = rules()
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        src = layer_of(module_name(path))
        for line, target, names in imports_of(path):
            if not allowed(table, src, target, names):
                where = path.relative_to(ROOT)
                broken.append(f"{where}:{line}: {src} imports {target} ({layer_of(target)})")
    assert not broken, "imports docs/design.md does not allow:\n" + "\n".join(broken)


def test_no_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        src = layer_of(module_name(path))
        for _, target, names in imports_of(path):
            dst = layer_of(target)
            if dst != src and not (target == "loadkit" and names == ["__version__"]):
                graph[src].add(dst)
    # the root package re-exports lazily and the CLI sits on top: neither is imported back
    for top in ("__init__", "__main__"):
        graph.pop(top, None)

    def visit(node: str, stack: list[str]) -> list[str] | None:
        if node in stack:
            return [*stack[stack.index(node) :], node]
        for nxt in sorted(graph.get(node, ())):
            if cycle := visit(nxt, [*stack, node]):
                return cycle
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        assert cycle is None, " → ".join(cycle or [])


@pytest.mark.parametrize(
    ("modules", "absent"),
    [
        # the Locust side: no gevent until Locust itself patches, no servers, no numpy
        (
            ["loadkit.load", "loadkit.load.runconfig", "loadkit.load.recorder"],
            ["gevent", "locust", "starlette", "uvicorn", "asyncpg", "numpy", "matplotlib"],
        ),
        # the orchestrator and the chaos catalog never import the wallet's server
        (
            ["loadkit.run.orchestrator", "loadkit.chaos", "loadkit.cli.main"],
            ["gevent", "starlette", "uvicorn", "loadkit.wallet.app"],
        ),
    ],
)
def test_import_weight(modules: list[str], absent: list[str]) -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(m for m in {absent!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    assert out.strip() == "[]", f"importing {modules} pulled in {out.strip()}"


def test_docs_point_only_at_files_that_exist() -> None:
    """Every ``docs/*.md`` / ``*.md`` a doc or docstring names is in the repository."""
    missing = []
    sources = [*ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md"), *PACKAGE.rglob("*.py")]
    for path in sources:
        for match in re.finditer(r"\b((?:docs/)?[A-Za-z0-9_-]+\.md)\b", path.read_text()):
            name = match.group(1)
            if name.upper() in ("DESIGN.MD", "ENVIRONMENT.MD", "STYLE.MD"):
                missing.append(f"{path.relative_to(ROOT)}: {name}")
                continue
            if "/" in name and not (ROOT / name).exists():
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert not missing, "references to files users do not have:\n" + "\n".join(missing)
