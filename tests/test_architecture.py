"""The shape of the code: lint, format, import contracts, module size, visible imports.

Why in the test suite: the architecture (no Ray in the science, no cycles, one room per job) decays
one convenient import at a time; CI is where such a change is stopped.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("xrdgen", "services", "models")
MAX_LINES = 350
LONG_REASON = "350 lines"  # the docstring says why the module is longer than that
OPAQUE_LABEL = re.compile(r"\b(?:[Ss]eed S\d|[Aa]rea [A-F])\b")


def _tool(name: str) -> str:
    """The tool beside this Python, else on PATH. Missing is a failure, never a skip: a gate that skips
    where its tool is absent lets exactly the unchecked installs through."""
    path = Path(sys.executable).parent / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: it is a test dependency (pip install -e '.[test]')", pytrace=False)
    return found


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_ruff_lint_passes():
    result = subprocess.run([_tool("ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = subprocess.run([_tool("ruff"), "format", "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts_hold():
    """No Ray/services/CLI in the science, services without the CLI, models alone, no cycles."""
    result = subprocess.run([_tool("lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_modules_are_short_or_say_why():
    long = []
    for path in _sources():
        lines = path.read_text().count("\n")
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and LONG_REASON not in docstring:
            long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not long, "modules over 350 lines without a reason in their docstring:\n" + "\n".join(long)


def _function_imports(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    yield inner


def _explained(lines: list[str], index: int) -> bool:
    """A comment on the import's line or anywhere in the block of imports (and `try:`) right above it;
    the blank lines that separate isort's groups inside the block do not end it."""
    while index >= 0:
        line = lines[index].strip()
        if "#" in line:
            return True
        if line and not line.startswith(("import ", "from ", "try:")):
            return False
        index -= 1
    return False


def test_imports_inside_functions_say_why():
    """A deliberately lazy import carries a comment (on its line or the line above) saying why."""
    hidden = []
    for path in _sources():
        text = path.read_text()
        lines = text.splitlines()
        for node in _function_imports(ast.parse(text)):
            if not _explained(lines, node.lineno - 1):
                hidden.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not hidden, "imports inside functions without a comment saying why:\n" + "\n".join(hidden)


def test_no_opaque_labels_in_code_or_docs():
    """The method's steps are named by what they are, not by document labels ("seed S1", "area A")."""
    offenders = []
    for path in _sources() + sorted(ROOT.glob("*.md")) + sorted((ROOT / "docs").rglob("*.md")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if OPAQUE_LABEL.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
