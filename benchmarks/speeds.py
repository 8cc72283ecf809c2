"""Seconds per image-epoch of ULSAD's training, from the committed runs: the table the book's time
estimates read (ulsad/speeds.csv, see ulsad/estimate.py).

Each committed row of results/*/*/runs.csv is one fit, with its training time (`train_s`, which includes
loading the images, θ's one pass and the calibration), its epochs and its number of training images.
The table holds the median of train_s / (epochs x n_train) over the runs of each device, backbone, image
size and c*. The rows do not say which machine ran them: --machine does, and the table keeps it.

    python benchmarks/speeds.py --machine "a 2-core CPU (no GPU)"      # rewrites ulsad/speeds.csv
    python benchmarks/speeds.py --machine "..." --check                  # exit 1 if the file differs
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "ulsad" / "speeds.csv"
COLUMNS = ("device", "backbone", "image_size", "c_star", "seconds_per_image_epoch", "runs", "machine")


def committed_runs() -> list[Path]:
    """Every runs.csv that git tracks under results/ (local, uncommitted runs are left out)."""
    listed = subprocess.run(["git", "ls-files", "results/*/*/runs.csv"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.split()
    if not listed:
        raise SystemExit("no committed results/*/*/runs.csv: run this in a clone of the book's repository")
    return [ROOT / p for p in listed]


def table(paths: list[Path], machine: str) -> str:
    """speeds.csv's text: one row per device, backbone, image size and c*, sorted."""
    per_setting = defaultdict(list)
    for path in paths:
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                config = json.loads(row["config"])
                key = (row["device"], config["backbone"], int(config["image_size"]), int(config["c_star"]))
                image_epochs = int(config["epochs"]) * int(row["n_train"])
                per_setting[key].append(float(row["train_s"]) / image_epochs)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for key in sorted(per_setting):
        speeds = per_setting[key]
        writer.writerow((*key, f"{statistics.median(speeds):.6f}", len(speeds), machine))
    return out.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machine", required=True, help="the machine the committed runs ran on, in words")
    parser.add_argument("--check", action="store_true", help="compare with ulsad/speeds.csv instead of writing it")
    args = parser.parse_args(argv)
    paths = committed_runs()
    text = table(paths, args.machine)
    if args.check:
        same = OUT.read_text(encoding="utf-8") == text
        print(f"{OUT.relative_to(ROOT)} {'matches' if same else 'differs from'} the {len(paths)} committed runs.csv")
        return 0 if same else 1
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)} from {len(paths)} committed runs.csv files:")
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
