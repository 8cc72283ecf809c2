"""How long each chapter takes opened alone, as a learner opens it: in a fresh clone, nothing trained yet.

For every chapter (or those named), the repository's last commit is cloned into a temporary folder and
the chapter alone is executed there with ``python -m ulsad.book.execute`` in the committed profile: it
generates its synthetic data, trains what it needs and reads the committed results, as it would in Colab
after its first cell. The seconds are the execution's own (kernel start to last cell), as the chapter's
record holds them. Each chapter's row in the output replaces the one it had; the others stay.

    python benchmarks/chapter_times.py --machine "a 2-core CPU (no GPU), otherwise idle"
    python benchmarks/chapter_times.py --machine "..." book/05_local_branch.ipynb

The chapters' openers quote these minutes (tests/test_book_files.py checks that they agree).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "synthetic-demo" / "chapter-times" / "times.csv"
COLUMNS = ("chapter", "seconds", "profile", "commit", "torch_threads", "machine", "date")


def read_rows(path: Path) -> dict[str, dict]:
    """The rows of ``path`` by chapter (none if it does not exist)."""
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and set(COLUMNS) - set(rows[0]):
        raise SystemExit(f"{path}: expected the columns {', '.join(COLUMNS)}; found {', '.join(rows[0])}")
    return {row["chapter"]: row for row in rows}


def write_rows(path: Path, rows: dict[str, dict]) -> None:
    """All of ``rows``, in chapter order, replacing ``path`` in one step."""
    part = path.with_name(path.name + ".part")
    with part.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows[c] for c in sorted(rows))
    part.replace(path)


def time_alone(chapter: str, commit: str) -> dict:
    """Execute ``chapter`` (e.g. ``book/05_local_branch.ipynb``) alone in a fresh clone of ``commit``."""
    with tempfile.TemporaryDirectory(prefix="chapter-times-") as tmp:
        clone = Path(tmp) / "book"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "checkout", "-q", commit], cwd=clone, check=True)
        # The clone's package, not the one installed from this repository, and no ULSAD_HOME: the
        # chapter finds the clone's committed results and no checkpoints.
        env = {k: v for k, v in os.environ.items() if k not in ("ULSAD_HOME", "ULSAD_PROFILE")}
        env["PYTHONPATH"] = os.pathsep.join([str(clone), *filter(None, [env.get("PYTHONPATH")])])
        subprocess.run([sys.executable, "-m", "ulsad.book.execute", chapter], cwd=clone, env=env, check=True)
        made = json.loads((clone / chapter).read_text(encoding="utf-8"))["metadata"]["ulsad"]
    return {"chapter": chapter, "seconds": made["seconds"], "profile": made["profile"], "commit": commit[:12]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help="chapters to time (default: every chapter of _toc.yml)")
    parser.add_argument("--machine", required=True, help="the machine this runs on, in words (it is recorded)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"the table to update (default {OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from ulsad.book.execute import chapters

    known = {p.relative_to(ROOT).as_posix() for p in chapters(ROOT)}
    todo = args.chapters or sorted(known)
    unknown = [c for c in todo if c not in known]
    if unknown:
        parser.error(f"not a chapter of _toc.yml: {', '.join(unknown)}; expected names such as "
                     f"{sorted(known)[0]}")
    rows = read_rows(args.out)  # a malformed table is refused before anything runs
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(args.out.parent, os.W_OK):
        parser.error(f"--out {args.out}: its folder is not writable")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    if subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                      text=True, check=True).stdout.strip():
        print(f"note: uncommitted changes are not measured; the chapters run as commit {commit[:12]} has them")

    import torch

    for chapter in todo:
        print(f"{chapter}: executing alone in a fresh clone ...", flush=True)
        row = time_alone(chapter, commit)
        rows[chapter] = {**row, "torch_threads": torch.get_num_threads(), "machine": args.machine,
                         "date": date.today().isoformat()}
        write_rows(args.out, rows)
        print(f"{chapter}: {row['seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
