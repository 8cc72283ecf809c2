"""Execute the book's chapters, record what produced their outputs, and tell when an output is stale.

    python -m ulsad.book.execute book/07_training.ipynb ...   # execute in place, in the committed profile
    python -m ulsad.book.execute --all                          # every chapter of _toc.yml
    python -m ulsad.book.execute --check                        # name the stale chapters; exit 1 if any

A committed output is worth what produced it. Executing a chapter here records, in the notebook's
metadata (``"ulsad"``), the profile it ran in, a SHA-256 of its code cells and a SHA-256 of every file
of the repository it read while it ran (the package's modules it imported, the ``results/`` files it
loaded, the package's data files), and how many seconds the execution took (not part of the check). Edit a code cell, a function of the package the chapter imports or
a results file it shows, and :func:`stale` names the chapter and what changed; ``tests/test_book_fresh.py``
fails until the chapter is executed again. Files the chapter made itself (``data/``,
``checkpoints/``: not tracked by git) are not part of the record: they are outputs, not sources.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEY = "ulsad"  # the notebook metadata key of the record
ROOT = Path(__file__).resolve().parents[2]  # the repository holding this package (an editable install)
# Seconds one cell may run, as the book build allows (_config.yml): a cell that trains in the committed profile
# takes minutes, and a kernel that lost a message waits forever without it.
CELL_TIMEOUT_S = 1200

_reads: set[str] = set()


# -- inside the kernel -------------------------------------------------------------------------------------

def _audit(event: str, args: tuple) -> None:
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _reads.add(os.path.abspath(os.fsdecode(args[0])))


def start_recording() -> None:
    """Called in the kernel before the first cell: every file opened from then on is noted."""
    sys.addaudithook(_audit)


def save_reads(path: str) -> None:
    """Called in the kernel after the last cell: the files opened, and those of the modules imported
    (a module loaded from its cached bytecode never opens its source), as JSON in ``path``."""
    modules = {os.path.abspath(m.__file__) for m in list(sys.modules.values())
               if getattr(m, "__file__", None) and m.__name__.split(".")[0] == "ulsad" and m.__name__ != __name__}
    Path(path).write_text(json.dumps(sorted(_reads | modules)))


# -- the record ----------------------------------------------------------------------------------------------

def code_hash(nb) -> str:
    """SHA-256 of the chapter's code cells, in order."""
    h = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            h.update(cell.source.encode() + b"\0")
    return h.hexdigest()


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tracked_files(root: Path) -> set[str]:
    """The repository's files under version control, relative to ``root``."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise RuntimeError(f"{root}: cannot list the repository's files with git ({e}); expected a git "
                           f"checkout of the book") from None
    return {os.fsdecode(name) for name in listed.split(b"\0") if name}


def record(nb, reads: list[str], root: Path, profile: str) -> dict:
    """The record of one execution: profile, code hash, and the hash of each tracked file read."""
    tracked, root = tracked_files(root), root.resolve()
    read = {}
    for path in reads:
        try:
            relative = Path(path).resolve().relative_to(root).as_posix()
        except ValueError:
            continue  # outside the repository: the installed libraries, temporary files
        if relative in tracked and (root / relative).is_file():
            read[relative] = file_hash(root / relative)
    return {"profile": profile, "code": code_hash(nb), "read": dict(sorted(read.items()))}


def stale(notebook: Path, root: Path | None = None, profile: str | None = None) -> list[str]:
    """What changed since ``notebook`` was executed (empty when its outputs are what its sources make now)."""
    import nbformat

    from .session import COMMITTED_PROFILE

    nb = nbformat.read(notebook, as_version=4)
    made = nb.metadata.get(KEY)
    if not made:
        return ["it holds no record of its execution"]
    reasons = []
    expected = profile or COMMITTED_PROFILE
    if made.get("profile") != expected:
        reasons.append(f"it was executed in the profile {made.get('profile')!r}, not {expected!r}")
    if made.get("code") != code_hash(nb):
        reasons.append("its code cells changed")
    for relative, digest in made.get("read", {}).items():
        path = (root or ROOT) / relative
        if not path.is_file():
            reasons.append(f"{relative}, which it read, is gone")
        elif file_hash(path) != digest:
            reasons.append(f"{relative}, which it read, changed")
    return reasons


# -- executing -------------------------------------------------------------------------------------------------

async def _run(client, code: str) -> None:
    """Run ``code`` in the client's kernel without a cell, an output or an execution count."""
    reply = await client.kc.execute_interactive(code, silent=True, store_history=False, timeout=60,
                                                output_hook=lambda msg: None)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"the kernel could not run {code!r}: {reply['content'].get('evalue')}")


async def _execute(client, reads_file: str, profile: str):
    client.reset_execution_trackers()
    # The kernel's own environment: this process's stays as it was (a test runner's profile, say).
    async with client.async_setup_kernel(env={**os.environ, "ULSAD_PROFILE": profile}):
        info = await client.async_wait_for_reply(client.kc.kernel_info())
        client.nb.metadata["language_info"] = info["content"]["language_info"]
        await _run(client, "import ulsad.book.execute as _x; _x.start_recording(); del _x")
        for index, cell in enumerate(client.nb.cells):
            await client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
        client.set_widgets_metadata()
        await _run(client, f"import ulsad.book.execute as _x; _x.save_reads({reads_file!r}); del _x")


def execute(notebook: Path, root: Path | None = None, profile: str | None = None,
            timeout: int = CELL_TIMEOUT_S) -> dict:
    """Execute ``notebook`` in place from its own folder, in ``profile`` (the committed one by default),
    and store its record. The file is replaced only once every cell has run."""
    import nbformat
    from nbclient import NotebookClient

    from .session import COMMITTED_PROFILE

    notebook = Path(notebook)
    profile = profile or COMMITTED_PROFILE
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook.parent.resolve())}})
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        reads_file = os.path.join(tmp, "reads.json")
        asyncio.run(_execute(client, reads_file, profile))
        reads = json.loads(Path(reads_file).read_text())
    nb.metadata[KEY] = {**record(nb, reads, root or ROOT, profile), "seconds": round(time.monotonic() - start)}
    part = notebook.with_name(notebook.name + ".part")
    nbformat.write(nb, part)
    part.replace(notebook)
    return nb.metadata[KEY]


def chapters(root: Path | None = None) -> list[Path]:
    """The notebooks of the table of contents, in its order."""
    import yaml

    root = root or ROOT
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [root / f"{f}.ipynb" for f in files if (root / f"{f}.ipynb").is_file()]


def _shown(path: Path) -> str:
    """``path`` as the user would type it: relative to the current folder when it lies in it."""
    path = Path(path).absolute()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ulsad.book.execute", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="chapters to execute in place")
    parser.add_argument("--all", action="store_true", help="execute every chapter of _toc.yml")
    parser.add_argument("--check", action="store_true", help="only name the stale chapters (exit 1 if any)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, metavar="S",
                        help=f"seconds one cell may run (default {CELL_TIMEOUT_S})")
    args = parser.parse_args(argv)
    if args.check:
        found = {_shown(nb): stale(nb) for nb in (args.notebooks or chapters())}
        for nb, reasons in found.items():
            if reasons:
                print(f"{nb}: stale ({'; '.join(reasons)})")
        if any(found.values()):
            print(f"execute them again: python -m ulsad.book.execute "
                  f"{' '.join(nb for nb, reasons in found.items() if reasons)}")
            return 1
        return 0
    todo = chapters() if args.all else args.notebooks
    if not todo:
        parser.error("name the chapters to execute, or --all")
    for nb in todo:
        if not nb.is_file() or nb.suffix != ".ipynb":
            parser.error(f"{nb}: no such notebook; expected a chapter such as book/07_training.ipynb")
    for nb in todo:
        print(f"executing {nb} ...", flush=True)
        made = execute(nb, timeout=args.timeout)
        print(f"  {made['seconds']} s, profile {made['profile']}, {len(made['read'])} files of the repository read",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
