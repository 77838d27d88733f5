"""The walls between packages hold: read from the imports of every module, not trusted.

- processors/ computes figures only: no Faust, Kafka, HTTP or Prometheus, nothing of
  streams/ or monitoring/.
- topics/ (the event contract) depends on nothing of ours, nor on those libraries; inside
  it, imports go one way (no cycle) and none is hidden in a function.
- monitoring/ never imports streams/.

Every import counts: `import x`, `from x import y` (y may be a module: both are checked),
relative imports, imports inside functions or `if TYPE_CHECKING:`, and
`importlib.import_module("x")` / `__import__("x")` with a literal name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]

# Faust and its runtime, Kafka clients, HTTP clients and servers, Prometheus.
NETWORK = (
    "faust",
    "mode",
    "aiokafka",
    "kafka",
    "confluent_kafka",
    "aiohttp",
    "requests",
    "httpx",
    "urllib3",
    "urllib.request",
    "http",
    "prometheus_client",
)
OURS = ("topics", "processors", "streams", "monitoring", "simulator", "bench", "tests")

# package → (forbidden module prefixes, why)
WALLS: dict[str, tuple[tuple[str, ...], str]] = {
    "processors": (
        (*NETWORK, "streams", "monitoring"),
        "processors/ computes figures only: no Faust, Kafka, HTTP or Prometheus, "
        "nothing of streams/ or monitoring/",
    ),
    "topics": (
        (*NETWORK, *(name for name in OURS if name != "topics")),
        "topics/ is the event contract: it depends on nothing of ours and on no network, "
        "Faust or Prometheus library",
    ),
    "monitoring": (("streams",), "monitoring/ never imports streams/"),
}


class Import(NamedTuple):
    line: int
    module: str
    top_level: bool  # at module level (or under a module-level `if`/`try`), not in a def


def _module_name(relative: Path) -> str:
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(relative: Path) -> str:
    """The package a relative import starts from."""
    name = _module_name(relative)
    return name if relative.name == "__init__.py" else name.rpartition(".")[0]


def imports_of(source: str, relative: Path) -> Iterator[Import]:
    """Every module `source` (the file at `relative`, from the repository root) imports."""
    tree = ast.parse(source, str(relative))
    nested: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            nested.update(id(child) for child in ast.walk(node) if child is not node)
    for node in ast.walk(tree):
        top = id(node) not in nested
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(node.lineno, alias.name, top)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(relative).split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                module = ".".join(part for part in [*base, node.module or ""] if part)
            else:
                module = node.module or ""
            yield Import(node.lineno, module, top)
            for alias in node.names:  # `from urllib import request`, `from streams import app`
                if alias.name != "*":
                    yield Import(node.lineno, f"{module}.{alias.name}", top)
        elif isinstance(node, ast.Call) and (name := _dynamic_import(node)) is not None:
            yield Import(node.lineno, name, top)


def _dynamic_import(call: ast.Call) -> str | None:
    """The literal name given to `importlib.import_module`/`import_module`/`__import__`."""
    func = call.func
    named = (isinstance(func, ast.Name) and func.id in {"__import__", "import_module"}) or (
        isinstance(func, ast.Attribute) and func.attr == "import_module"
    )
    if not named or not call.args or not isinstance(call.args[0], ast.Constant):
        return None
    value = call.args[0].value
    return value if isinstance(value, str) else None


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def offences(source: str, relative: Path) -> list[str]:
    """'file:line imports x (why)' for every import of `source` that breaks its package's wall."""
    wall = WALLS.get(relative.parts[0])
    if wall is None:
        return []
    forbidden, why = wall
    found = []
    seen: set[tuple[int, str]] = set()
    for imported in imports_of(source, relative):
        prefix = next((p for p in forbidden if _within(imported.module, p)), None)
        if prefix is not None and (imported.line, prefix) not in seen:
            seen.add((imported.line, prefix))
            found.append(f"{relative}:{imported.line} imports {imported.module} ({why})")
    return found


def _sources(package: str) -> Iterator[tuple[Path, str]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        if "__pycache__" not in path.parts:
            yield path.relative_to(ROOT), path.read_text(encoding="utf-8")


def test_the_walls_hold() -> None:
    checked = 0
    broken: list[str] = []
    for package in WALLS:
        for relative, source in _sources(package):
            checked += 1
            broken += offences(source, relative)
    assert checked >= 20, f"only {checked} modules found under {list(WALLS)}: wrong root?"
    assert not broken, "imports through a wall:\n" + "\n".join(broken)


def test_our_packages_are_all_known() -> None:
    """A new top-level package must be added to OURS, or topics/ could import it unseen."""
    packages = {
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if not path.parent.name.startswith(".")
    }
    assert packages <= set(OURS), f"add to OURS: {sorted(packages - set(OURS))}"


def test_topics_modules_form_a_dag_imported_at_the_top() -> None:
    graph: dict[str, set[str]] = {}
    lazy = []
    for relative, source in _sources("topics"):
        name = _module_name(relative)
        graph[name] = set()
        for imported in imports_of(source, relative):
            if not _within(imported.module, "topics"):
                continue
            if not imported.top_level:
                lazy.append(f"{relative}:{imported.line} imports {imported.module} in a function")
            graph[name].add(imported.module)
    assert not lazy, "a lazy import hides a cycle:\n" + "\n".join(lazy)
    for name in graph:  # `from topics.fields import Text` also yields topics.fields.Text
        graph[name] = {module for module in graph[name] if module in graph and module != name}
    order: list[str] = []
    remaining = dict(graph)
    while remaining:
        ready = sorted(name for name, deps in remaining.items() if deps <= set(order))
        assert ready, f"an import cycle among {sorted(remaining)}"
        order += ready
        for name in ready:
            del remaining[name]
    assert order.index("topics.errors") < order.index("topics.fields")
    assert order.index("topics.fields") < order.index("topics.schema")
    assert order.index("topics.fields") < order.index("topics.validation")


# The checker itself catches what it must, and no more.
SYNTHETIC = """\
import os
import faustian
from typing import TYPE_CHECKING
from urllib import parse, request
from . import rules
from streams import app

if TYPE_CHECKING:
    from prometheus_client import Counter


def handler():
    from monitoring.collector import Collector
    import aiokafka.producer
    return importlib.import_module("http.client")
"""


def test_the_checker_catches_a_violation_with_its_file_and_line() -> None:
    found = offences(SYNTHETIC, Path("processors/synthetic.py"))
    lines = [message.split(" ")[0] for message in found]
    assert lines == [
        "processors/synthetic.py:4",  # urllib.request
        "processors/synthetic.py:6",  # streams
        "processors/synthetic.py:9",  # under TYPE_CHECKING
        "processors/synthetic.py:13",  # inside a function
        "processors/synthetic.py:14",
        "processors/synthetic.py:15",  # importlib.import_module
    ], found
    assert "imports urllib.request (processors/ computes figures only" in found[0]
    assert "imports streams" in found[1]


def test_the_checker_applies_each_package_s_wall() -> None:
    source = "from processors.rules import x\nfrom streams import app\n"
    assert [m.split(" ")[0] for m in offences(source, Path("topics/x.py"))] == [
        "topics/x.py:1",
        "topics/x.py:2",
    ]
    assert offences(source, Path("monitoring/x.py")) == [
        "monitoring/x.py:2 imports streams (monitoring/ never imports streams/)"
    ]
    assert offences(source, Path("streams/x.py")) == []  # no wall around streams/
    assert offences("import faust\n", Path("simulator/x.py")) == []


def test_the_checker_sees_imports_inside_functions_as_lazy() -> None:
    source = "from topics.errors import X\n\n\ndef f():\n    from topics.schema import y\n"
    found = list(imports_of(source, Path("topics/fields.py")))
    assert [(i.line, i.module, i.top_level) for i in found] == [
        (1, "topics.errors", True),
        (1, "topics.errors.X", True),
        (5, "topics.schema", False),
        (5, "topics.schema.y", False),
    ]


def test_relative_imports_are_resolved_from_the_file_s_package() -> None:
    source = "from .rules import x\nfrom . import facts\nfrom .. import figures\n"
    found = [i.module for i in imports_of(source, Path("processors/sub/y.py"))]
    assert found == [
        "processors.sub.rules",
        "processors.sub.rules.x",
        "processors.sub",
        "processors.sub.facts",
        "processors",
        "processors.figures",
    ]
    init = [i.module for i in imports_of("from . import a\n", Path("processors/sub/__init__.py"))]
    assert init == ["processors.sub", "processors.sub.a"]
