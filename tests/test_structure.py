"""The library's shape, as DESIGN.md's "Library structure" draws it: layers that point one way.

Read from the source (``ast``), so a circle or a reach into another module's private names fails
here, in a second, before any runtime test runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "appcoup_lib"
RUNTIMES = ("local", "docker", "kubernetes")
# The layer above the runtimes: what uses them. Nothing under runtimes/ may import these.
TOP = {"measure", "loose", "lessons", "dashboard", "diagram", "doctor", "classroom", "cli", "exercises",
       "course", "crashes", "reference", "live", "answers", "bundle", "guide", "solutions", "preflight",
       "classroom_cluster", "experiments"}
MAX_LINES = 500


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in LIB.rglob("*.py")}


def _resolve(mod: str, path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    base = pkg[: len(pkg) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(mod: str, path: Path, known: set[str]) -> list[tuple[str, str | None]]:
    """(module imported, name imported from it or None), for every import anywhere in the file."""
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(mod, path, node)
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.append((sub, None) if sub in known else (target, a.name))
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        for target, _ in _imports(mod, path, known):
            if target in known and target != mod and not mod.startswith(target + "."):
                # ``from .. import x`` of a package also runs the package's __init__: that edge is
                # implied by the package holding the module, not a dependency of its own.
                graph[mod].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _is_package_init_edge(mod: str, target: str) -> bool:
    # A package's __init__ re-exporting its own modules is its public face, not a circle.
    return target.startswith(mod + ".")


def test_the_import_graph_has_no_circle() -> None:
    graph = {m: {t for t in ts if not _is_package_init_edge(m, t)} for m, ts in _graph().items()}
    assert _cycles(graph) == [], "import circles (each list imports itself round)"


def test_nothing_under_runtimes_imports_the_layer_above() -> None:
    up = sorted(f"{m} -> {t}" for m, ts in _graph().items() if m.startswith("appcoup_lib.runtimes")
                for t in ts if t.split(".")[1] in TOP and t.count(".") == 1)
    assert up == []


@pytest.mark.parametrize("tree", ["appcoup_lib", "tests", "benchmarks"])
def test_no_module_imports_another_modules_private_names(tree: str) -> None:
    known = set(_modules())
    bad = []
    for path in sorted((ROOT / tree).rglob("*.py")):
        mod = _module_name(path)
        for target, name in _imports(mod, path, known):
            last = (name or target.rsplit(".", 1)[-1])
            if last.startswith("_") and not last.startswith("__") and target != mod:
                bad.append(f"{path.relative_to(ROOT)}: {target}{'.' + name if name else ''}")
    assert bad == []


def test_benchmarks_share_one_common_module_instead_of_importing_each_other() -> None:
    bad = []
    # bench.py is the driver: it runs each runtime's benchmark, and nothing imports it.
    for path in sorted(p for p in (ROOT / "benchmarks").glob("*.py") if p.name != "bench.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{path.name} imports {n}" for n in names if n.startswith("bench")]
    bad += [f"bench.py is imported by {p.name}" for p in (ROOT / "benchmarks").glob("*.py")
            if "import bench\n" in p.read_text()]
    assert bad == []


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_runtime_is_a_package_of_the_same_files(runtime: str) -> None:
    pkg = LIB / "runtimes" / runtime
    assert pkg.is_dir(), f"runtimes/{runtime}/ should be a package"
    missing = [f for f in ("__init__.py", "runtime.py", "app.py", "events.py", "scaling.py") if not (pkg / f).exists()]
    assert missing == []


def test_no_library_file_is_longer_than_a_reader_can_hold() -> None:
    long = {str(p.relative_to(ROOT)): n for p in LIB.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


# -- the README's guide ("Adding a runtime", "Adding a scenario") stays true ----------------------
# The hooks the README names, and only those, are what a new runtime must write.
GUIDE_APP_HOOKS = {"url", "status", "processes", "_kill", "events", "logs", "_teardown"}
GUIDE_RUNTIME_HOOKS = {"availability", "_up", "_recorded", "_attach", "running", "clean"}


def test_the_runtime_hooks_are_the_documented_ones() -> None:
    from appcoup_lib.runtimes.base import App, Runtime

    readme = (ROOT / "README.md").read_text()
    guide = readme[readme.index("**Adding a runtime**"):readme.index("**Adding a scenario**")]
    assert set(App.__abstractmethods__) == GUIDE_APP_HOOKS
    assert set(Runtime.__abstractmethods__) == GUIDE_RUNTIME_HOOKS
    for hook in GUIDE_APP_HOOKS | GUIDE_RUNTIME_HOOKS:
        assert f"`{hook}" in guide, f"the README's 'Adding a runtime' does not name {hook}"


@pytest.mark.local
def test_a_scenario_is_data_any_runtime_runs(local) -> None:  # type: ignore[no-untyped-def]
    """The guide's "Adding a scenario", followed: a scenario defined here alone (a pod whose echo
    reads the generator's file from a second mount point), run on the local runtime."""
    from dataclasses import replace

    from appcoup_lib.scenarios import SCENARIOS, Unit

    pod = SCENARIOS["pod"]
    gen, echo = pod.units[0].containers
    twin = replace(pod, name="pod-twin", title="A pod, defined in a test",
                   units=(Unit("app", (gen, replace(echo, workdir="/tmp/elsewhere"))),))
    with local.up(twin, interval=0.2, port=0, name="appcoup-structure-twin") as app:
        app.wait_ready(timeout=30, progress=False)
        first = len(app.data())
        assert app.scenario.name == "pod-twin" and set(app.status()) == {"generator", "echo"}
        app.wait_until(lambda: len(app.data()) > first, 10, "the new scenario to serve more numbers")
