"""The first code cell of every chapter: a chapter opened alone (in Colab, say) fetches the whole book.

A chapter opened from the repository's page in Colab is a lone notebook: the package, the committed
results (``results/``) and the scripts (``benchmarks/``) that it reads are not there. Its first cell
makes a shallow clone of the repository, installs the package from it (the package's dependencies
are ranges, so Colab's own PyTorch stays), and changes into the clone's ``book/`` folder, where the
chapter then runs as it does in a local clone. In a local clone the cell does nothing, or installs
the package when the kernel lacks it.

The cell cannot import this package (it is what installs it), so it must name the repository's
address itself. That address is set once, in ``_config.yml`` (``repository.url``); the cell's text is
generated here from it, and a test checks every chapter against the generated text. After changing
the address::

    python -m ulsad.book.first_cell        # rewrites the first cell of every chapter
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]  # the repository (only meaningful in a clone, where the book is)
TEMPLATE = '''\
# Opened alone (in Colab, say)? Fetch the book's repository, install its package, and work inside it.
import importlib.util, os, subprocess, sys
from pathlib import Path
REPOSITORY = os.environ.get("ULSAD_REPOSITORY", "{url}")
book = next((p for p in (Path.cwd(), *Path.cwd().parents) if (p / "_toc.yml").is_file() and (p / "ulsad").is_dir()),
            None)
if book is None:
    book = Path.cwd() / "ulsad-book"
    if not (book / "_toc.yml").is_file():
        subprocess.run(["git", "clone", "-q", "--depth", "1", REPOSITORY, str(book)], check=True)
    os.chdir(book / "book")
if importlib.util.find_spec("ulsad") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", f"{{book}}[notebooks]"], check=True)
    sys.path.insert(0, str(book))  # the install takes effect in new kernels; this one imports from the clone'''


def repository_url(config: Path = ROOT / "_config.yml") -> str:
    """The repository's address, from the book's configuration (the one place it is set)."""
    url = (yaml.safe_load(config.read_text(encoding="utf-8")).get("repository") or {}).get("url")
    if not url:
        raise ValueError(f"{config}: expected repository.url, the address the chapters clone in Colab")
    return url


def first_cell(url: str | None = None) -> str:
    """The text of every chapter's first code cell, for the repository at `url` (default: _config.yml's)."""
    return TEMPLATE.format(url=url or repository_url())


def chapters(book: Path = ROOT / "book") -> list[Path]:
    return sorted(book.glob("[0-9][0-9]_*.ipynb"))


def write(paths: list[Path]) -> list[Path]:
    """Make the generated text each chapter's first code cell; returns the chapters that changed."""
    text, changed = first_cell(), []
    for path in paths:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        cell = next((c for c in notebook["cells"] if c["cell_type"] == "code"), None)
        if cell is None:
            raise ValueError(f"{path}: expected a code cell (the cell that fetches the book), found none")
        if "".join(cell["source"]) != text:
            cell["source"] = text.splitlines(keepends=True)
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            changed.append(path)
    return changed


if __name__ == "__main__":
    for path in write(chapters()):
        print(f"rewrote the first cell of {path.relative_to(ROOT)}")
    sys.exit(0)
