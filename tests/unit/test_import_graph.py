"""The package's import graph, read statically (ast, nothing imported), keeps its layers pointing one way.

Every ``import`` / ``from ... import`` in every module of src/edgeport is resolved to the edgeport module it
loads (``from edgeport.x import y`` is ``edgeport.x.y`` when that is a module, else ``edgeport.x``; relative
imports are resolved against the importing package). Two graphs come out of it:

- *all* edges: imports anywhere in a file, at module level and inside functions (and under
  ``if TYPE_CHECKING:``). The layer rules use these: a lazy import is still a dependency;
- *module-level* edges: the imports that run when the module is imported (top level, class bodies, top-level
  ``if``/``try``; not function bodies, not ``if TYPE_CHECKING:`` blocks). The cycle rule uses these only:
  importing a module inside the one function that needs it is how the code breaks a cycle on purpose (and how
  heavy libraries stay out of ``edgeport --help``), and such an import cannot see a half-initialised module.

Rules:
(a) nothing under edgeport.runtimes imports edgeport.convert or edgeport.validate: the device profile installs
    runtimes + validate + bench only, and the runtimes are the layer the other two stand on;
(b) no import cycle among edgeport modules through module-level imports;
(c) the neutral modules (the flatbuffer reader tflite_fb, onnx_data, formats, status, outdir, exc_text) import nothing from
    convert, validate, quantize, bench or runtimes;
(d) edgeport.data, the neutral feeds/images/sample-file layer, imports nothing from convert, validate, quantize,
    bench or runtimes: every one of them reads its inputs through it.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PKG = SRC / "edgeport"

# (importer, imported) -> why the edge is allowed despite rule (a). Each entry must still exist in the graph.
ALLOWED_LAYER_EDGES: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py")) if "__pycache__" not in p.parts}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether it runs at module import time (imports are statements, so only
    statement bodies are walked)."""
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []

    def walk(body: list[ast.stmt], at_import: bool) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                found.append((stmt, at_import))
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                walk(stmt.body, False)
            elif isinstance(stmt, ast.If) and _is_type_checking(stmt.test):
                walk(stmt.body, False)
                walk(stmt.orelse, at_import)
            else:
                for field in ("body", "orelse", "finalbody"):
                    walk(getattr(stmt, field, None) or [], at_import)
                for handler in getattr(stmt, "handlers", None) or []:  # try/except
                    walk(handler.body, at_import)
                for case in getattr(stmt, "cases", None) or []:  # match
                    walk(case.body, at_import)

    walk(tree.body, True)
    return found


def _targets(node: ast.Import | ast.ImportFrom, importer: str, is_pkg: bool, known: set[str]) -> set[str]:
    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = importer.split(".") if is_pkg else importer.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            mod = ".".join(base + ([node.module] if node.module else []))
        else:
            mod = node.module or ""
        names = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
    return {t for t in (resolve(n) for n in names if n.split(".")[0] == "edgeport") if t and t != importer}


@functools.lru_cache(maxsize=1)
def build_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(all edges, module-level edges), each importer -> the edgeport modules it imports."""
    mods = _modules()
    known = set(mods)
    every: dict[str, set[str]] = {m: set() for m in mods}
    at_import: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, runs in _imports(tree):
            targets = _targets(node, name, path.name == "__init__.py", known)
            every[name] |= targets
            if runs:
                at_import[name] |= targets
    return every, at_import


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comps: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def _layer_violations(every: dict[str, set[str]], importers: str, forbidden: tuple[str, ...]) -> set[tuple[str, str]]:
    return {(a, b) for a, deps in every.items() if _under(a, importers)
            for b in deps if any(_under(b, f) for f in forbidden)}


def test_the_graph_sees_the_package():
    every, at_import = build_graph()
    # Known edges of each kind, so a resolver that finds nothing cannot pass the rules below.
    assert "edgeport.errors" in at_import["edgeport.manifest"]
    assert "edgeport.quantize.tflite_variants" in at_import["edgeport.quantize.debug"]
    assert "edgeport.validate.pair" in every["edgeport.validate.parity"]
    assert "edgeport.validate.pair" not in at_import["edgeport.validate.parity"]  # imported inside validate_files
    assert len(every) > 50 and sum(map(len, every.values())) > 200


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_runtimes_import_neither_convert_nor_validate():
    every, _ = build_graph()
    bad = _layer_violations(every, "edgeport.runtimes", ("edgeport.convert", "edgeport.validate"))
    unexplained = sorted(bad - set(ALLOWED_LAYER_EDGES))
    assert not unexplained, f"edgeport.runtimes must not import convert/validate: {unexplained}"


def test_no_module_level_import_cycles():
    _, at_import = build_graph()
    cycles = _cycles(at_import)
    assert not cycles, f"module-level import cycles (import inside the function that needs it, or move the shared piece down): {cycles}"


NEUTRAL = ("edgeport.tflite_fb", "edgeport.onnx_data", "edgeport.formats", "edgeport.status", "edgeport.outdir",
           "edgeport.exc_text")
UPPER_LAYERS = ("edgeport.convert", "edgeport.validate", "edgeport.quantize", "edgeport.bench", "edgeport.runtimes")


def test_the_neutral_modules_stand_alone():
    """The flatbuffer reader, the ONNX external-data rules, the registries of formats and status words and
    the output-folder rules are read by every layer, so they import none of them."""
    every, _ = build_graph()
    for module in NEUTRAL:
        assert module in every, module
        bad = _layer_violations(every, module, UPPER_LAYERS)
        assert not bad, f"{module} must stay neutral: {sorted(bad)}"


def test_the_data_package_stands_alone():
    every, _ = build_graph()
    assert "edgeport.data.feeds" in every["edgeport.data.images"]  # the resolver sees the package's own edges
    assert "edgeport.data.samples" in every["edgeport.runtimes.job"]
    bad = _layer_violations(every, "edgeport.data", ("edgeport.convert", "edgeport.validate", "edgeport.quantize",
                                                     "edgeport.bench", "edgeport.runtimes"))
    assert not bad, f"edgeport.data must stay neutral: {sorted(bad)}"


def test_every_edgeport_import_names_a_module_that_exists():
    """A module that moved leaves no import of its old name behind (a lazy one would fail only when it runs)."""
    mods = _modules()
    missing = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, _ in _imports(tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                wanted = [node.module]
            elif isinstance(node, ast.Import):
                wanted = [a.name for a in node.names]
            else:
                continue
            missing += [f"{name}: {w}" for w in wanted if w.split(".")[0] == "edgeport" and w not in mods]
    assert not missing, f"imports of edgeport modules that do not exist: {missing}"


def test_every_allowed_edge_still_exists():
    every, _ = build_graph()
    stale = [edge for edge in ALLOWED_LAYER_EDGES if edge[1] not in every.get(edge[0], set())]
    assert not stale, f"allowed exceptions that are gone from the code (remove them from the list): {stale}"


def test_split_pairs_import_one_way_only():
    # The variants module is below the per-layer debugger, the two-file pairing below the parity run: the lower
    # module does not reach back up, not even inside a function.
    every, _ = build_graph()
    assert "edgeport.quantize.tflite_variants" in every["edgeport.quantize.debug"]
    assert "edgeport.quantize.debug" not in every["edgeport.quantize.tflite_variants"]
    assert "edgeport.validate.pair" in every["edgeport.validate.parity"]
    assert "edgeport.validate.parity" not in every["edgeport.validate.pair"]
