"""The package layering of the house style: ``envs/`` imports nothing above it and ``agents/`` neither
``trainers/`` nor ``benchmarks/`` (imports inside functions count too)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BANNED = {"envs": {"agents", "trainers", "benchmarks"}, "agents": {"trainers", "benchmarks"}}


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("package", sorted(BANNED))
def test_a_package_imports_nothing_above_it(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in files
        for line, name in imported_packages(path)
        if name in BANNED[package]
    ]
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    body = "import os\n\ndef f():\n    from trainers.base import Trainer\n    import benchmarks.run\n"
    source.write_text(body)
    assert imported_packages(source) == [(1, "os"), (4, "trainers"), (5, "benchmarks")]
