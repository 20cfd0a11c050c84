"""YAML loading that remembers where every key and value was written.

``yaml.safe_load`` semantics (the safe tag set, anchors, aliases and ``<<`` merge keys), but the
result is a tree of :class:`Map`, :class:`Seq` and :class:`Scalar` nodes, each carrying its 1-based
:class:`Mark` and its field path (``stages[2].duration``), so that every later mistake can be
reported at ``file:line:column``. Duplicate keys are problems, not silent overwrites. A file is
at most :data:`MAX_BYTES` long and nests at most :data:`MAX_DEPTH` lists and mappings deep (PyYAML
composes recursively: a 1,000-level list would otherwise end in a RecursionError)::

    doc = load_document("profiles/smoke.yaml")
    doc.root.get("stages")  # a Seq whose .mark is the line the list starts on
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from loadkit.spec.errors import Problem, SpecError

#: composed nodes one file may expand to; guards against "billion laughs" alias bombs
MAX_NODES = 50_000
#: lists and mappings inside one another; real profiles, scenarios and SLOs use fewer than 10
MAX_DEPTH = 64
#: the largest spec file read (a generated profile of a year of traffic is well under this)
MAX_BYTES = 4 * 1024 * 1024

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


@dataclass(frozen=True, slots=True)
class Mark:
    """A place in a file: 1-based line and column."""

    line: int
    column: int


@dataclass(eq=False, slots=True)
class Node:
    """A YAML value with the place it was written at and its field path from the top of the file."""

    mark: Mark
    path: str

    def plain(self) -> object:
        """The value as ``yaml.safe_load`` would have returned it."""
        raise NotImplementedError


@dataclass(eq=False, slots=True)
class Scalar(Node):
    """A string, number, boolean, null or timestamp."""

    value: object = None

    def plain(self) -> object:
        return self.value


@dataclass(eq=False, slots=True)
class Seq(Node):
    """A YAML list."""

    items: tuple[Node, ...] = ()

    def plain(self) -> object:
        return [item.plain() for item in self.items]


@dataclass(eq=False, slots=True)
class Map(Node):
    """A YAML mapping. Keys are the text as written (``200:`` is the key ``"200"``)."""

    items: dict[str, Node] = field(default_factory=dict)
    key_marks: dict[str, Mark] = field(default_factory=dict)

    def get(self, key: str) -> Node | None:
        return self.items.get(key)

    def plain(self) -> object:
        return {key: node.plain() for key, node in self.items.items()}


@dataclass(frozen=True, slots=True)
class Document:
    """A loaded file: its top-level mapping and the problems found while loading it."""

    file: str
    root: Map
    problems: tuple[Problem, ...]


def child_path(parent: str, key: str) -> str:
    """``stages[2]`` + ``duration`` → ``stages[2].duration``; odd keys are quoted: ``a["x y"]``."""
    if _SIMPLE_KEY.match(key):
        return f"{parent}.{key}" if parent else key
    return f'{parent}["{key}"]'


def load_document(path: str | Path) -> Document:
    """Read and parse one YAML file whose top level must be a mapping.

    Raises :class:`SpecError` for an unreadable file, invalid YAML, an empty file or a top level
    that is not a mapping; duplicate keys and unsupported tags come back in ``Document.problems``.
    """
    file = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise _too_big_file(file)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise SpecError([Problem(file, None, None, "", "no such file")]) from None
    except UnicodeDecodeError as exc:
        raise SpecError([Problem(file, None, None, "", f"not UTF-8 text ({exc.reason})")]) from None
    except OSError as exc:
        raise SpecError([Problem(file, None, None, "", f"cannot read: {exc.strerror}")]) from None
    return parse_document(text, file)


def parse_document(text: str, file: str) -> Document:
    """Like :func:`load_document`, for text already in memory (``file`` names it in messages)."""
    if len(text) > MAX_BYTES:
        raise _too_big_file(file)
    _check_depth(text, file)
    loader = yaml.SafeLoader(text)
    try:
        try:
            composed = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            raise SpecError([_syntax_problem(file, exc)]) from None
        if composed is None:
            raise SpecError([Problem(file, None, None, "", "the file is empty")])
        builder = _Builder(loader, file)
        try:
            root = builder.build(composed, "")
        except _TooBig:
            problem = Problem(file, None, None, "", f"expands to more than {MAX_NODES} values")
            raise SpecError([problem]) from None
    finally:
        loader.dispose()
    if not isinstance(root, Map):
        got = "a list" if isinstance(root, Seq) else f"the single value {root.plain()!r}"
        message = f"expected a mapping of 'key: value' lines at the top level, got {got}"
        raise SpecError([Problem(file, root.mark.line, root.mark.column, "", message)])
    return Document(file, root, tuple(builder.problems))


def _too_big_file(file: str) -> SpecError:
    message = f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB; is it a spec file?"
    return SpecError([Problem(file, None, None, "", message)])


def _too_deep(file: str, mark: Mark, path: str = "") -> SpecError:
    message = f"lists and mappings nested more than {MAX_DEPTH} levels deep"
    return SpecError([Problem(file, mark.line, mark.column, path, message)])


def _check_depth(text: str, file: str) -> None:
    """Refuse nesting beyond :data:`MAX_DEPTH` before composing: PyYAML's parser is iterative,
    its composer is not. Syntax errors are left for the composer to report."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                at = event.start_mark
                if depth > MAX_DEPTH and at is not None:
                    raise _too_deep(file, Mark(at.line + 1, at.column + 1))
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return


def _mark(mark: yaml.Mark) -> Mark:
    return Mark(mark.line + 1, mark.column + 1)


def _syntax_problem(file: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    if "'\\t'" in problem:
        message = "a tab character; YAML is indented with spaces and needs a space after ':'"
    else:
        message = "invalid YAML: " + problem.replace("'<stream end>'", "the end of the file")
        if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
            where = _mark(exc.context_mark)
            message += f" ({exc.context} at line {where.line}, column {where.column})"
    if mark is None:
        return Problem(file, None, None, "", message)
    at = _mark(mark)
    return Problem(file, at.line, at.column, "", message)


class _TooBig(Exception):
    pass


class _Builder:
    """Turns composed YAML nodes into marked nodes, collecting problems as it goes."""

    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.problems: list[Problem] = []
        self.active: set[int] = set()  # collections being built: an alias to one is a cycle
        self.count = 0
        self.depth = 0  # aliases can nest deeper than the text does: count while building

    def problem(self, mark: Mark, path: str, message: str) -> None:
        self.problems.append(Problem(self.file, mark.line, mark.column, path, message))

    def build(self, node: yaml.Node, path: str) -> Node:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig
        mark = _mark(node.start_mark)
        if isinstance(node, yaml.ScalarNode):
            try:
                return Scalar(mark, path, self.loader.construct_object(node, deep=True))
            except yaml.constructor.ConstructorError:
                self.problem(mark, path, f"unsupported YAML tag {node.tag!r}")
                return Scalar(mark, path, node.value)
        if id(node) in self.active:
            self.problem(mark, path, "an alias that contains itself")
            return Scalar(mark, path, None)
        if self.depth >= MAX_DEPTH:
            raise _too_deep(self.file, mark, path)
        self.active.add(id(node))
        self.depth += 1
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ_TAG:
                    self.problem(mark, path, f"unsupported YAML tag {node.tag!r}")
                items = (self.build(item, f"{path}[{i}]") for i, item in enumerate(node.value))
                return Seq(mark, path, tuple(items))
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, mark, path)
        finally:
            self.depth -= 1
            self.active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, mark: Mark, path: str) -> Map:
        if node.tag != _MAP_TAG:
            self.problem(mark, path, f"unsupported YAML tag {node.tag!r}")
        merged: dict[str, tuple[Mark, Node]] = {}
        own: dict[str, tuple[Mark, Node]] = {}
        for key_node, value_node in node.value:
            key_mark = _mark(key_node.start_mark)
            if key_node.tag == _MERGE_TAG:
                merged.update(self._merge(value_node, path))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_mark, path, "a key must be a plain word, not a list or mapping")
                continue
            key = str(key_node.value)
            child = child_path(path, key)
            if key in own:
                first = own[key][0].line
                self.problem(key_mark, child, f"duplicate key '{key}' (first set on line {first})")
                continue
            own[key] = (key_mark, self.build(value_node, child))
        entries = {**merged, **own}  # keys written next to '<<' override the merged ones
        return Map(
            mark,
            path,
            {key: value for key, (_, value) in entries.items()},
            {key: key_mark for key, (key_mark, _) in entries.items()},
        )

    def _merge(self, node: yaml.Node, path: str) -> dict[str, tuple[Mark, Node]]:
        """The entries a ``<<: *anchor`` (or ``<<: [*a, *b]``, first wins) brings in."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        entries: dict[str, tuple[Mark, Node]] = {}
        for source in reversed(sources):
            built = self.build(source, path)
            if not isinstance(built, Map):
                self.problem(built.mark, path, "'<<' merges mappings only")
                continue
            entries.update({k: (built.key_marks[k], v) for k, v in built.items.items()})
        return entries
