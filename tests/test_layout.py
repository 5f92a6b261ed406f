"""The layout holds: import contracts that catch a cycle, a docstring atop every module, small test modules."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("lib", "handlers", "tests", "tools", "bench")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        check=False,
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def copy_of_the_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("layout")
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            tree / package,
            ignore=shutil.ignore_patterns("__pycache__", "data", "events"),
        )
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_import_contracts_hold_on_the_tree_as_it_is(copy_of_the_tree: Path):
    result = _lint_imports(copy_of_the_tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    "module, imported",
    [
        ("lib/upstreams/base.py", "lib.upstreams.echo"),
        ("lib/keys/document.py", "lib.gateway"),
        ("lib/errors.py", "lib.routes"),
    ],
)
def test_a_function_level_import_cycle_breaks_the_contracts(
    copy_of_the_tree: Path, module: str, imported: str
):
    path = copy_of_the_tree / module
    original = path.read_text()
    path.write_text(
        original + f"\n\ndef _cycle() -> None:\n    import {imported}  # noqa: F401\n"
    )
    try:
        result = _lint_imports(copy_of_the_tree)
    finally:
        path.write_text(original)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout


def _modules() -> list[Path]:
    return sorted(
        p
        for folder in ("lib", "handlers", "tools", "tests")
        for p in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in p.parts
    ) + [ROOT / "main.py"]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_starts_with_a_docstring_saying_what_it_holds(path: Path):
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    assert docstring and len(docstring.splitlines()[0]) > 10


def test_no_test_module_is_over_500_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / "tests").rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 500
    }
    assert not long
