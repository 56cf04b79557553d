"""The layout keeps its layers: the core never needs Ray, and no function hides its phases in length."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RAY_FREE = ("storage", "config", "models", "data", "runs", "evaluation", "mle", "rewards", "mc")
CORE = sorted([*ROOT.glob("seqgan_rl/*.py"), *(p for d in RAY_FREE for p in ROOT.glob(f"seqgan_rl/{d}/*.py"))])
MAX_FUNCTION_LINES = 60

LAYERS = {
    "errors": 0, "storage": 1, "models": 2, "mc": 3, "data": 3, "runs": 4, "evaluation": 5, "config": 6,
    "mle": 7, "rewards": 7, "distributed": 8, "envs": 8, "rllib": 9, "experiment": 10, "commands": 11,
}
"""The house from the bottom up: a unit (a package under ``seqgan_rl/``, a top-level module, or ``envs``)
imports only units of a lower layer; the top-level ``seqgan_rl/__init__.py`` imports nothing."""
ENVS_PACKAGE = "seqgan_rl_envs"
"""The name the source folder ``envs/`` is installed and imported under (setup.cfg's ``package_dir``)."""
PACKAGES = ("seqgan_rl", ENVS_PACKAGE)


def unit_of(module: str) -> str:
    parts = module.split(".")
    return "envs" if parts[0] == ENVS_PACKAGE else parts[1] if len(parts) > 1 else "seqgan_rl"


def project_imports(path: Path) -> set[str]:
    """Every project module ``path`` imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            found |= ({f"{node.module}.{a.name}" for a in node.names} if node.module == "seqgan_rl"
                      else {node.module})
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] in PACKAGES}
    return found


def import_graph() -> dict[str, set[str]]:
    paths = [*ROOT.glob("seqgan_rl/**/*.py"), *ROOT.glob("envs/*.py")]
    modules = {module_name(p): p for p in paths}
    graph = {}
    for name, path in modules.items():
        # ``from pkg.mod import x`` names module pkg.mod; ``from pkg import mod`` names pkg.mod or pkg
        graph[name] = {m if m in modules else m.rsplit(".", 1)[0] for m in project_imports(path)} - {name}
    return graph


def module_name(path: Path) -> str:
    """The name ``path`` is imported under (a module of ``envs/`` as one of ``ENVS_PACKAGE``)."""
    top, *rest = path.relative_to(ROOT).with_suffix("").parts
    return ".".join([ENVS_PACKAGE if top == "envs" else top, *rest]).removesuffix(".__init__")


@pytest.mark.parametrize("package", ["core", "commands"])
def test_core_and_command_modules_import_without_ray(package: str) -> None:
    """With ``import ray`` made to fail, every core module (the top of ``seqgan_rl/`` and the packages in
    ``RAY_FREE``) and every command module imports: Ray is needed only where actors, RLlib or a cluster are
    (``distributed/``, ``rllib/``, ``experiment/``), and then only when a command runs."""
    paths = CORE if package == "core" else sorted(ROOT.glob("seqgan_rl/commands/*.py"))
    assert len(paths) > 5
    names = [module_name(p) for p in paths]
    script = ("import importlib, sys\n"
              "sys.modules['ray'] = None  # any `import ray` raises ImportError\n"
              f"for name in {names!r}:\n"
              "    importlib.import_module(name)\n"
              "print('ok', len([n for n in sys.modules if n.startswith('seqgan_rl')]))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok")


def test_the_ray_free_check_fails_on_a_module_that_needs_ray(tmp_path: Path) -> None:
    """The mechanism above really detects an import of Ray."""
    (tmp_path / "needs_ray.py").write_text("import ray\n")
    script = "import sys\nsys.modules['ray'] = None\nimport needs_ray\n"
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "import of ray halted" in result.stderr


def test_imports_only_go_down_the_layers() -> None:
    graph = import_graph()
    units = {unit_of(m) for m in graph} - {"seqgan_rl"}
    assert units == set(LAYERS), f"every unit has a layer: {sorted(units ^ set(LAYERS))}"
    upward = [f"{m} -> {t}" for m, targets in graph.items() for t in targets
              if unit_of(m) != unit_of(t) and (unit_of(m) == "seqgan_rl" or LAYERS[unit_of(m)] <= LAYERS[unit_of(t)])]
    assert not upward, "imports that go up or sideways: " + "; ".join(sorted(upward))


def test_no_import_cycle_between_modules() -> None:
    graph = import_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return [*path, module, target]
            if target not in state and (cycle := visit(target, [*path, module])):
                return cycle
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            assert (cycle := visit(module, [])) is None, " -> ".join(cycle)


def test_the_layer_checks_see_lazy_imports_and_imported_modules(tmp_path: Path) -> None:
    """What the checks above read: an import made inside a function, and ``from package import module``."""
    (tmp_path / "m.py").write_text("def f():\n    from seqgan_rl import commands\n"
                                   "    from seqgan_rl.rllib.build import x\n")
    assert project_imports(tmp_path / "m.py") == {"seqgan_rl.commands", "seqgan_rl.rllib.build"}


def test_no_function_longer_than_60_lines() -> None:
    long = []
    for path in sorted([*ROOT.glob("seqgan_rl/**/*.py"), *ROOT.glob("envs/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, "split these into named phases: " + "; ".join(long)


def test_every_package_folder_is_installed() -> None:
    """setup.cfg lists the packages by name (``envs/`` is installed as ``ENVS_PACKAGE``, which a search of the
    folders cannot name): every folder of ``seqgan_rl/`` holding an ``__init__.py`` is among them."""
    import configparser

    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    listed = set(setup["options"]["packages"].split())
    folders = {module_name(path) for path in [*ROOT.glob("seqgan_rl/**/__init__.py"), ROOT / "envs" / "__init__.py"]}
    assert listed == folders
    assert setup["options"]["package_dir"].split() == [ENVS_PACKAGE, "=", "envs"]
