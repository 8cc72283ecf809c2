"""One method, a separate book wing: nothing outside ulsad/book/ imports it, so the method runs without the book."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ulsad"
METHOD = sorted(p for p in PACKAGE.rglob("*.py") if PACKAGE / "book" not in p.parents)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str, package: str) -> set[str]:
    """Every module the import statements of ``source`` (a module of ``package``) may load, relative ones resolved.

    ``from .. import book`` in ulsad.data gives ulsad and ulsad.book: a name after ``import`` may be a module.
    """
    here = package.split(".")
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def book_imports(path: Path) -> list[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return sorted(m for m in imported(path.read_text(encoding="utf-8"), package)
                  if m == "ulsad.book" or m.startswith("ulsad.book."))


def test_the_rule_resolves_relative_imports():
    assert imported("from ..book import session", "ulsad.data") >= {"ulsad.book", "ulsad.book.session"}
    assert "ulsad.book" in imported("from . import book", "ulsad")
    assert "ulsad.book.analysis" in imported("import ulsad.book.analysis", "ulsad")
    assert imported("from .synth import render", "ulsad.data") == {"ulsad.data.synth", "ulsad.data.synth.render"}


@pytest.mark.parametrize("path", METHOD, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_method_never_imports_the_book(path):
    assert not book_imports(path)


def test_importing_the_method_loads_no_module_of_the_book():
    modules = [module_name(p) for p in METHOD if p.name != "__main__.py"]  # importing __main__ runs the CLI
    code = ("import importlib, sys\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m == 'ulsad.book' or m.startswith('ulsad.book.')))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
