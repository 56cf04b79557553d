"""The layout keeps its layers: the core never needs Ray, and no function hides its phases in length."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = sorted([*ROOT.glob("seqgan_rl/*.py"), *ROOT.glob("seqgan_rl/mc/*.py")])
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


@pytest.mark.parametrize("package", ["core", "commands"])
def test_core_and_command_modules_import_without_ray(package: str) -> None:
    """With ``import ray`` made to fail, every core module (the top of ``seqgan_rl/`` and ``seqgan_rl/mc/``) and
    every command module imports: Ray is needed only where actors, RLlib or a cluster are (``distributed/``,
    ``rllib/``, ``experiment/``), and then only when a command runs."""
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


def test_no_function_longer_than_80_lines() -> None:
    long = []
    for path in sorted([*ROOT.glob("seqgan_rl/**/*.py"), *ROOT.glob("envs/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, "split these into named phases: " + "; ".join(long)
