"""The reproduction runner: train and evaluate every (category, seed, variant), and put the numbers beside the paper's.

    reproduce(dataset, root, categories, seeds, variants, profile, overrides, out)
                       runs what ``out/runs.csv`` does not hold yet, then writes the summaries
    load_runs(out)     ``out/runs.csv`` as a DataFrame
    check_inputs(runs) every image and mask the runs will read, opened before any of them trains
    summarize(runs)    {"category": ..., "dataset": ...}: mean ± std over seeds beside the paper
    paper_value(dataset, category, variant, metric)
                       the paper's number for a run's counterpart, if it has one

Files in ``out``:

- ``runs.csv``: one row per run, appended as each run finishes, so that an
  interrupted sweep resumes where it stopped. A run is named by
  ``dataset, category, variant, profile, overrides, seed``; a row of that name is
  reused only while its ``config`` is the configuration the name resolves to now
  (delete it, or the file, to run it again). When the name has come to mean
  another configuration (a new default backbone, say), the row moves to
  ``superseded.csv`` and the run is made again. Columns:
  those six; ``data`` (SYNTHETIC or the real dataset), ``data_version`` (which
  generator drew synthetic images: part of ``config_id``, so that runs on images
  of an older generator are superseded, not reused), ``root``, ``weights`` (the
  backbone's weights as ``detector.weights_source`` says: imagenet, random,
  file:NAME), ``backbone``, ``image_size``, ``epochs``, ``config`` (the full
  Config as JSON), ``device``, ``n_train``, ``n_validation``, ``final_loss``,
  ``final_L_pl`` (both the last epoch's mean), ``train_s``, ``eval_s``, ``wall_s``, ``ulsad_version``, ``commit`` (see
  :func:`source_commit`), ``finished``; then every
  metric key of :mod:`ulsad.evaluate` (``image_auroc``, ``local.aupro``,
  ``logical.image_auroc``, ...) as fractions in [0, 1], empty where undefined,
  and the local map's diagnostics ``local.floor_share`` and ``local.border_share``
  (:func:`ulsad.evaluate.floor_and_border`). The file is UTF-8, except that a
  name the file system gives that is not (a root or category) is written as its
  own bytes. Reading it checks the number columns and ``config`` and names the
  line and column of a cell that is not what the runner writes.
- ``summary_by_category.csv`` / ``.md`` and ``summary_by_dataset.csv`` / ``.md``:
  one row per setting and metric, in percent as the paper prints: ``mean`` and
  ``std`` over seeds (sample std; the dataset level takes the mean over the
  categories of each seed first, using only seeds that have every category),
  ``paper``, ``paper_std``, ``paper_source``, ``difference`` (ours - paper) and
  ``provenance``. The Markdown files show the headline metrics under visible
  lines saying what data, backbone weights and profile the numbers come from.

Where the paper's value comes from (:func:`paper_value`): for ``full`` (ULSAD)
on a real dataset, Tables 6-20 per category and Tables 1-2 per dataset; for the
Table 3 ablations on MVTec LOCO, Table 3 per dataset and Tables 21-22 per
category; for the backbones of Fig. 8 on MVTec LOCO, Table 23 per category.
The dataset level is compared only when every category of the dataset was run.
Synthetic data and ``folder`` images have no counterpart: the paper column is empty.

Executors: ``local`` runs one after another in this process; ``ray`` sends each
run to a Ray cluster as a task with one GPU (one CPU where the cluster has no
GPU), so that Table 1's 41 categories x 5 seeds run in parallel. Every worker
needs ``ulsad`` installed and the dataset root at the same path.
"""
from __future__ import annotations

import csv
import datetime
import functools
import hashlib
import io
import itertools
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from . import __version__, data, metrics, paper, train
from .backbone import describe_weights
from .config import VARIANTS, Config, default_profile, get_config
from .data.images import IMAGE_SUFFIXES, open_image
from .evaluate import METRICS, evaluate, find_defects_config, floor_and_border

RUNS_FILE = "runs.csv"
# Names the file system gives that are not UTF-8 (os.fsdecode's lone surrogates) go into and come back out of
# the CSV files as the very bytes of the name, so that a run on them is written and found again on resume.
ENCODING_ERRORS = "surrogateescape"
SUPERSEDED_FILE = "superseded.csv"  # rows whose name now resolves to another configuration: kept, not reused
EXECUTORS = ("local", "ray")
RAY_CONNECT_TIMEOUT_S = 10  # to reach a Ray cluster's address, before ray.init
# Number columns of runs.csv besides the metrics (whose key ends in a name of ulsad.evaluate.METRICS).
NUMBERS = ("seed", "image_size", "epochs", "n_train", "n_validation", "n_test", "n_anomalous", "final_loss",
           "final_L_pl", "train_s", "eval_s", "wall_s", "local.floor_share", "local.border_share")
KEY = ("dataset", "category", "config_id")  # a run IS its resolved configuration (seed included)
LABELS = ("variant", "profile", "overrides", "seed")  # how it was asked for; several labels may name one run
# What makes runs differ besides their seed: the summaries average over seeds within these.
SETTING = ("dataset", "variant", "profile", "overrides", "data", "weights", "backbone", "image_size", "epochs")
HEADLINE = ("image_auroc", "pixel_auroc", "aupro", "spro", "logical.image_auroc", "structural.image_auroc",
            "local.image_auroc", "global.image_auroc")  # what the Markdown summaries show

# Our dataset names -> the paper's; metric keys -> the paper's metric names.
PAPER_DATASETS = {"mvtec_ad": "MVTec", "mvtec_loco": "MVTec-LOCO", "btad": "BTAD", "mpdd": "MPDD", "visa": "VisA"}
PAPER_METRICS = {"image_auroc": "I-AUROC", "pixel_auroc": "P-AUROC", "aupro": "P-AUPRO"}
@dataclass
class Run:
    """One training and evaluation: what identifies it in runs.csv, and how to build its Config."""

    dataset: str
    root: str
    category: str
    variant: str
    seed: int
    profile: str
    overrides: dict = field(default_factory=dict)

    def config(self):
        return get_config(self.profile, self.variant, **self.overrides, seed=self.seed)

    def identity(self) -> dict:
        """The KEY columns of this run's row: what it is."""
        return dict(zip(KEY, (self.dataset, self.category, config_id(self.config(), self.data_version()))))

    def data_version(self) -> str:
        return data_version(self.dataset, self.root, self.category)

    def labels(self) -> dict:
        """The LABELS columns: how it was asked for."""
        return dict(zip(LABELS, (self.variant, self.profile, _overrides_text(self.overrides), self.seed)))


def data_version(dataset: str, root, category: str) -> str:
    """For the synthetic benchmark, the generator that drew the images and how many it drew
    ("synthetic-v2 (100/30/300 images)": train/validation/test), or "synthetic-unstamped" for a copy
    older than the stamps; "" for a real dataset, which does not change."""
    if dataset != "synthetic":
        return ""
    made_by = data.synth.stamp(root, category)
    if not made_by:
        return "synthetic-unstamped"
    counts = made_by.get("counts")
    if not counts:
        return f"synthetic-v{made_by['generator']}"
    test = sum(counts[k] for k in ("good", "logical", "structural"))
    return f"synthetic-v{made_by['generator']} ({counts['train']}/{counts['validation']}/{test} images)"


@functools.cache
def source_commit() -> str:
    """The git commit of the code that makes a result: "abc123def456", with "+dirty" when the package or
    the benchmarks differ from it, or "not a git checkout" (an installed wheel: ``ulsad_version`` says it)."""
    root = Path(__file__).resolve().parent.parent

    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)

    head = git("rev-parse", "--short=12", "HEAD")
    if head.returncode != 0:
        return "not a git checkout"
    dirty = git("status", "--porcelain", "--", "ulsad", "benchmarks").stdout.strip()
    return head.stdout.strip() + ("+dirty" if dirty else "")


def config_id(cfg, data_version: str = "") -> str:
    """A stable hash of every setting that can change a run's numbers (the seed too; not where it runs),
    and of the version of generated data (``Run.data_version``): other images make another run."""
    settings = {k: v for k, v in cfg.to_dict().items() if k not in ("device", "num_workers")}
    if data_version:
        settings["data_version"] = data_version
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def _key(values) -> tuple[str, ...]:
    """A run's KEY (or LABELS) values as text, alike whether they come from a Run or from runs.csv."""
    return tuple(str(v) for v in values)


def _overrides_text(overrides: dict) -> str:
    """Overrides as canonical JSON ({} for none): part of a run's identity in runs.csv."""
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}, sort_keys=True)


def data_kind(dataset: str) -> str:
    """What the numbers were measured on, in words no reader can take for the paper's data."""
    if dataset == "synthetic":
        return "SYNTHETIC"
    return "own images (folder)" if dataset == "folder" else f"{dataset} (real)"


def run_one(run: Run) -> dict:
    """Train on the category's normal images (Algorithm 1), evaluate on its test set: one row of runs.csv."""
    cfg = run.config()
    start = time.perf_counter()
    load = lambda split: data.load(run.dataset, run.root, run.category, split,  # noqa: E731
                                   image_size=cfg.image_size, val_fraction=cfg.val_fraction, seed=cfg.seed)
    train_set, validation, test = load("train"), load("validation"), load("test")
    detector, history = train.fit(train_set, validation, cfg, progress=False)
    trained = time.perf_counter()
    result = evaluate(detector, test, defects_config=find_defects_config(run.root, run.category))
    result.update(floor_and_border(detector, test))
    end = time.perf_counter()
    device = str(detector.device)
    if detector.device.type == "cuda":
        device += f" ({torch.cuda.get_device_name(detector.device)})"
    return {
        **run.identity(), **run.labels(), "data": data_kind(run.dataset), "data_version": run.data_version(),
        "root": run.root, "weights": detector.weights_source,
        "backbone": cfg.backbone, "image_size": cfg.image_size, "epochs": cfg.epochs,
        "config": json.dumps(cfg.to_dict(), sort_keys=True), "device": device, "n_train": len(train_set),
        "n_validation": len(validation), "final_loss": history[-1]["total"], "final_L_pl": history[-1]["L_pl"],
        "train_s": trained - start,
        "eval_s": end - trained, "wall_s": end - start, "ulsad_version": __version__,
        "commit": source_commit(),
        "finished": datetime.datetime.now().isoformat(timespec="seconds"),
        **result,
    }


def check_inputs(runs: list[Run]) -> None:
    """Open every file the runs will read, before any of them trains: a bad test mask found after hours of
    training costs those hours on every rerun. Each split is listed as its run lists it; each image is
    opened and each mask compared with its image's size from the files' headers, nothing decoded, so that
    this takes seconds even for every category of a benchmark. Raises a DataError naming the file."""
    listed, seen = set(), set()
    for run in runs:
        cfg = run.config()
        for split in data.SPLITS:
            how = (run.dataset, run.root, run.category, split, cfg.image_size, cfg.val_fraction, cfg.seed)
            if how in listed:
                continue
            listed.add(how)
            for sample in data.load(*how[:4], image_size=cfg.image_size, val_fraction=cfg.val_fraction,
                                    seed=cfg.seed).samples:
                if sample.path not in seen:
                    seen.add(sample.path)
                    _check_sample(sample)
        defects = find_defects_config(run.root, run.category)
        if defects is not None and defects not in seen:
            seen.add(defects)
            try:
                metrics.load_defects_config(defects)
            except (OSError, ValueError, KeyError, TypeError) as error:
                raise data.DataError(f"{defects}: cannot read this defects config ({type(error).__name__}: "
                                     f"{error}); expected MVTec LOCO's list of defects as JSON") from None


def _check_sample(sample: data.Sample) -> None:
    """The image opens, and each of its masks has its size (which ``data.read_mask`` demands only at evaluation)."""
    size = _upright_size(sample.path)
    for mask in sample.masks:
        found = _upright_size(mask)
        if found != size:  # a header can hide an EXIF turn (a PNG's may follow its pixels): decode, as training will
            size, found = open_image(sample.path).size, open_image(mask).size
        if found != size:
            raise data.DataError(f"{mask}: mask of {found[0]}x{found[1]} pixels for the image {sample.path} of "
                                 f"{size[0]}x{size[1]} pixels; expected a mask the size of its image")


def _upright_size(path) -> tuple[int, int]:
    """(width, height) as training will see it (EXIF orientation applied) from the file's header."""
    try:
        with Image.open(path) as image:
            # A PNG's EXIF may follow its pixels, which reading would decode: then the check above decodes.
            exif = image.getexif() if image.format != "PNG" or "exif" in image.info else {}
            turned = exif.get(0x0112, 1) in (5, 6, 7, 8)  # Orientation: turned by 90 degrees one way or the other
            width, height = image.size
    except Image.DecompressionBombError as error:
        raise data.DataError(f"{path}: {str(error).rstrip('.')}; expected a smaller image") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise data.DataError(f"{path}: cannot read this image ({error}); expected an intact "
                             f"{'/'.join(IMAGE_SUFFIXES)} file") from None
    if width * height > data.MAX_PIXELS:
        raise data.DataError(f"{path}: image size {width}x{height} exceeds the limit of {data.MAX_PIXELS} pixels; "
                             f"expected a smaller image")
    return (height, width) if turned else (width, height)


def _check_ray_address(address: str | None) -> None:
    """A Ray cluster at ``host:port`` (or ``ray://host:port``) must answer within seconds: ``ray.init``
    would retry for minutes, printing warnings. Done before Ray is imported. Other forms ("auto", none:
    start a local cluster) are Ray's to resolve."""
    given = address or os.environ.get("RAY_ADDRESS")  # what ray.init would join
    if not given:
        return
    host, _, port = given.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=RAY_CONNECT_TIMEOUT_S).close()
    except OSError as error:
        named = given if address else f"{given} (from RAY_ADDRESS)"
        raise ConnectionError(f"no Ray cluster answers at {named} ({error or type(error).__name__}); expected a "
                              f"running Ray head there (ray start --head), or no address to start a local cluster"
                              ) from None


def _run_local(runs: list[Run]):
    """One run after another in this process; yields (run, row or the exception it raised)."""
    for run in runs:
        try:
            yield run, run_one(run)
        except Exception as e:  # one failed run must not cost the others theirs
            yield run, e


def _run_ray(runs: list[Run], address: str | None):
    """Each run a Ray task (one GPU each, or one CPU without GPUs); yields results as they finish."""
    import ray

    started = not ray.is_initialized()
    if started and address:
        ray.init(address=address)
    elif started:
        ray.init(include_dashboard=False)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        task = ray.remote(run_one).options(**({"num_gpus": 1} if gpus else {"num_cpus": 1}))
        pending = {task.remote(run): run for run in runs}
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            run = pending.pop(ref)
            try:
                yield run, ray.get(ref)
            except Exception as e:
                yield run, e
    finally:
        if started:
            ray.shutdown()


def reproduce(dataset: str, root, categories=None, seeds=1, variants=("full",), profile: str | None = None,
              overrides: dict | None = None, out="results/reproduce", executor: str = "local",
              ray_address: str | None = None, verbose: bool = True) -> pd.DataFrame:
    """Train and evaluate every (category, variant, seed) not yet in ``out/runs.csv``, then write the summaries.

    categories: default all of the dataset's; seeds: a count (seeds 0..n-1) or a list of seeds;
    variants: names of ``ulsad.config.VARIANTS`` ("full" is ULSAD); overrides: Config fields for every
    run, on top of the profile and the variant (not ``seed``: use ``seeds``).

    Before any run trains, every image and mask the runs to do will read is opened (:func:`check_inputs`),
    and a Ray cluster's address must answer within ``RAY_CONNECT_TIMEOUT_S``: both raise naming the file
    or address. Returns the rows of runs.csv of the requested runs. Raises RuntimeError at the end when
    some runs failed, after writing every run that did not, and at once when a row cannot be written.
    """
    if dataset not in data.DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(data.DATASETS)}")
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; expected one of {', '.join(EXECUTORS)}")
    if executor == "ray":
        _check_ray_address(ray_address)
    overrides = dict(overrides or {})
    if "seed" in overrides:
        raise ValueError("the seed is not an override here: pass seeds= (a count or a list)")
    profile = profile or default_profile()
    categories = list(categories or data.categories(dataset, root))
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    runs = [Run(dataset, str(root), c, v, s, profile, overrides)
            for c, v, s in itertools.product(categories, variants, seeds)]
    for run in runs:
        run.config()  # a bad variant or override fails here, before hours of training
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    previous = load_runs(out).reindex(columns=[*KEY, *LABELS])
    made = {_key(row[:len(KEY)]) for row in previous.itertuples(index=False)}
    # a run's name: its labels on its dataset and category (the first two KEY columns)
    named = {_key((*row[:2], *row[len(KEY):])): _key(row[:len(KEY)]) for row in previous.itertuples(index=False)}
    todo, stale = {}, []
    for run in runs:
        key = _key(run.identity().values())
        if key not in made:
            todo.setdefault(key, run)  # two names for one configuration: one run
        old = named.get(_key((run.dataset, run.category, *run.labels().values())))
        if old is not None and old != key:
            stale.append(old)
    todo = list(todo.values())
    say = print if verbose else (lambda *a, **k: None)
    if stale:
        _supersede(out, stale)
        say(f"{len(stale)} runs in {os.path.relpath(out / RUNS_FILE)} were made with another configuration than their "
            f"name now gives (another version's defaults, e.g. another backbone, or images of another generator): moved to "
            f"{SUPERSEDED_FILE}", flush=True)
    say(f"{len(runs)} runs: {len(runs) - len(todo)} already in {os.path.relpath(out / RUNS_FILE)}, {len(todo)} to do "
        f"({executor}; {data_kind(dataset)}, profile {profile})", flush=True)
    check_inputs(todo)

    failures, saved = [], 0
    results = _run_ray(todo, ray_address) if executor == "ray" else _run_local(todo)
    try:
        for i, (run, row) in enumerate(results, 1):
            what = f"[{i}/{len(todo)}] {run.category} {run.variant} seed {run.seed}"
            if isinstance(row, Exception):
                failures.append(f"{what}: {type(row).__name__}: {row}")
                print(f"{what} FAILED: {row}", file=sys.stderr, flush=True)
                continue
            try:
                _append(out / RUNS_FILE, row)
            except (OSError, ValueError) as e:  # a full disk, say: stop before more runs train for nothing
                raise RuntimeError(f"{what} was made, but its row could not be written to {out / RUNS_FILE} ({e}); "
                                   f"that file is left as it was before this run: rerun to make it again") from e
            saved += 1
            say(f"{what}: image AUROC {row['image_auroc']:.4f} ({row['weights']} weights, {row['wall_s']:.0f} s)",
                flush=True)
    except KeyboardInterrupt:  # each finished run is already in runs.csv: say so, instead of a traceback
        raise KeyboardInterrupt(f"{saved} of the {len(todo)} runs to do finished and are in {out / RUNS_FILE}; "
                                f"rerun the same command to resume") from None

    all_runs = load_runs(out)
    for name, table in summarize(all_runs).items():
        write_summary(table, out / f"summary_by_{name}", name)
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(todo)} runs failed (the others are in {out / RUNS_FILE}; "
                           f"run again to retry): " + "; ".join(failures))
    by_key = {_key(row[list(KEY)]): row for _, row in all_runs.iterrows()}
    return pd.DataFrame([{**by_key[_key(run.identity().values())], **run.labels()} for run in runs])


def load_runs(out) -> pd.DataFrame:
    """``out/runs.csv`` (an empty DataFrame when there is none); names stay text ("01" is a BTAD category).

    Rows written before runs were identified by their configuration get their config_id from
    their stored ``config``.
    """
    path = Path(out) / RUNS_FILE
    if not path.is_file():
        return pd.DataFrame()
    lines = _check_intact(path)
    text = {c: str for c in ("dataset", "category", "config_id", "variant", "profile", "overrides", "data", "root",
                             "weights", "backbone", "config", "device", "commit", "data_version")}
    runs = pd.read_csv(path, dtype=text, keep_default_na=False, na_values=[""], encoding_errors=ENCODING_ERRORS)
    # A cell edited by hand would otherwise fail far from here, in words naming neither the file nor the row.
    fix = "correct the cell, or delete the line to make its run again"
    for column in [c for c in runs.columns if c in NUMBERS or c.split(".")[-1] in METRICS]:
        numbers = pd.to_numeric(runs[column], errors="coerce")
        wrong = np.flatnonzero(numbers.isna() & runs[column].notna())
        if len(wrong):
            raise ValueError(f"{path}, line {lines[wrong[0]]}, column {column}: {runs[column].iloc[wrong[0]]!r} is not "
                             f"a number; expected a number, or nothing where it is undefined: {fix}")
        runs[column] = numbers
    ids = runs["config_id"].copy() if "config_id" in runs else pd.Series(np.nan, index=runs.index, dtype=object)
    for i, cell in enumerate(runs["config"] if "config" in runs or ids.isna().any() else []):
        try:
            settings = json.loads(cell) if isinstance(cell, str) else None
            if not isinstance(settings, dict):
                raise ValueError(f"{'nothing' if settings is None else repr(settings)} where a JSON object belongs")
            if pd.isna(ids.iloc[i]):  # a row older than config_id: its id comes from its configuration
                ids.iloc[i] = config_id(Config.from_dict(settings))
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path}, line {lines[i]}, column config: not a configuration ({error}); expected the "
                             f"run's Config as JSON, as the runner writes it: {fix}") from None
    runs["config_id"] = ids
    return runs


def _check_intact(path: Path) -> list[int]:
    """runs.csv must be whole: every row ends and has the header's columns. Else one line naming the
    file and how to keep its complete rows, not pandas' "Error tokenizing data" (which names no file),
    and never a torn last row read as a finished run with empty metrics.

    Returns the line each row starts on, for errors that name a row (a quoted cell may span lines)."""
    text = path.read_text(encoding="utf-8", errors=ENCODING_ERRORS)
    reader, width, starts, torn = csv.reader(io.StringIO(text), strict=True), 0, [], None
    try:
        width = len(next(reader, []))
        end = reader.line_num  # of the previous row
        for row in reader:
            if row and len(row) != width:
                torn = reader.line_num
                break
            if row:  # a blank line is no row, to pandas either
                starts.append(end + 1)
            end = reader.line_num
    except csv.Error:  # a quoted field that never closes
        torn = reader.line_num
    if width and torn is None and text.endswith("\n"):
        return starts
    torn = max(torn or reader.line_num, 1)
    keep = f"lines 2-{torn - 1} are complete runs: delete line {torn} and after to keep them, or " if torn > 2 else ""
    raise ValueError(f"{path} is damaged from line {torn} on (a row cut short, e.g. by a full disk or an "
                     f"interrupted copy): {keep}move the file away to start again")


def _append(path: Path, row: dict) -> None:
    """Add a row to runs.csv, atomically; the columns grow when a run brings new metrics (e.g. sPRO)."""
    _write_csv(pd.concat([load_runs(path.parent), pd.DataFrame([row])], ignore_index=True), path)


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    """Replace ``path`` by ``table`` whole or not at all: written beside it, then renamed over it."""
    part = path.with_name(path.name + ".part")
    try:
        table.to_csv(part, index=False, errors=ENCODING_ERRORS)
        part.replace(path)
    except BaseException:  # Ctrl-C too: a torn .part would only be in the way
        part.unlink(missing_ok=True)
        raise


def _supersede(out: Path, keys: list[tuple[str, ...]]) -> None:
    """Move the rows of `keys` from runs.csv to superseded.csv (appended), so that no result is lost."""
    runs = load_runs(out)
    old = [_key(row) in set(keys) for row in runs[list(KEY)].itertuples(index=False)]
    moved = runs[old]
    kept = out / SUPERSEDED_FILE
    if kept.is_file():
        moved = pd.concat([pd.read_csv(kept, dtype=str, keep_default_na=False, encoding_errors=ENCODING_ERRORS),
                           moved.astype(str)], ignore_index=True)
    _write_csv(moved, kept)
    _write_csv(runs[[not o for o in old]], out / RUNS_FILE)


def paper_value(dataset: str, category: str | None, variant: str, metric: str):
    """The paper's (value, std, source) for a run's counterpart, in percent, or None when it has none.

    category None asks for the dataset level. std is NaN where the paper prints no ±.
    """
    cell = _paper_cell(PAPER_DATASETS.get(dataset), category, variant, PAPER_METRICS.get(metric))
    if cell is None:
        return None
    n, row, column = cell
    try:
        value, std = paper.table(n).loc[row, column], paper.table(n, std=True).loc[row, column]
    except KeyError:  # a category or setting the table does not print
        return None
    return None if np.isnan(value) else (float(value), float(std), f"Table {n}")


def _paper_cell(dataset: str | None, category: str | None, variant: str, metric: str | None):
    """(table, row, column) of the paper's value, following the module docstring."""
    if dataset is None or metric is None:
        return None
    if variant == "full":
        if category is None:
            return (1, "ULSAD", dataset) if metric == "I-AUROC" else (2, "ULSAD", (dataset, metric))
        return paper.PER_CATEGORY[(dataset, metric)], category, "ULSAD"
    if dataset != "MVTec-LOCO":
        return None
    found = VARIANTS.get(variant)
    if found is None:
        return None
    if category is None:
        return (3, found.table3_row, metric) if found.table3_row else None
    if found.per_category is None:
        return None
    n, block, column = found.per_category
    return n, category if block is None else (block, category), (column, metric)


def summarize(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Mean ± std over seeds per category and per dataset, in percent, beside the paper (module docstring)."""
    if runs.empty:
        return {"category": pd.DataFrame(), "dataset": pd.DataFrame()}
    by_category, by_dataset = [], []
    metric_columns = [c for c in runs.columns if c.split(".")[-1] in METRICS]
    for keys, group in runs.groupby(list(SETTING), sort=False):
        meta = dict(zip(SETTING, keys))
        for metric in metric_columns:
            # seeds x categories, in percent as the paper prints
            table = group.groupby(["seed", "category"])[metric].mean().unstack("category").astype(float) * 100
            for category in table.columns:
                values = table[category].dropna()
                if len(values):
                    found = paper_value(meta["dataset"], category, meta["variant"], metric)
                    by_category.append(_summary_row(meta, category, metric, values, found))
            complete = table.dropna()  # the seeds that have every category, so that each mean is comparable
            if len(complete):
                whole = set(table.columns) == set(data.DATASETS[meta["dataset"]])
                found = paper_value(meta["dataset"], None, meta["variant"], metric) if whole else None
                by_dataset.append({**_summary_row(meta, "all", metric, complete.mean(axis=1), found),
                                   "n_categories": len(table.columns)})
    return {"category": pd.DataFrame(by_category), "dataset": pd.DataFrame(by_dataset)}


def provenance(meta) -> str:
    """Where a summary row's own numbers come from: data, backbone weights, profile and overrides."""
    overrides = "" if meta["overrides"] == "{}" else f" with {meta['overrides']}"
    return (f"ours: {meta['data']} data, {meta['backbone']} backbone with {describe_weights(meta['weights'])} weights, "
            f"profile {meta['profile']}{overrides}, image size {meta['image_size']}, epochs {meta['epochs']}")


def _summary_row(meta: dict, category: str, metric: str, values: pd.Series, found) -> dict:
    """One summary row: our mean ± std over seeds, and the paper's (value, std, source) when found."""
    value, std, source = found or (np.nan, np.nan, "")
    mean = values.mean()
    return {**meta, "category": category, "metric": metric, "n_seeds": len(values), "mean": mean,
            "std": values.std() if len(values) > 1 else np.nan, "paper": value, "paper_std": std,
            "paper_source": source, "difference": mean - value,
            "provenance": provenance(meta) + (f"; paper: {source}" if source else "; paper: no counterpart")}


def write_summary(table: pd.DataFrame, stem: Path, level: str) -> None:
    """``stem.csv`` (every metric) and ``stem.md`` (the headline metrics, under their provenance)."""
    table.to_csv(stem.with_suffix(".csv"), index=False, errors=ENCODING_ERRORS)
    lines = [f"# ULSAD reproduction: summary by {level}", ""]
    if table.empty:
        stem.with_suffix(".md").write_text("\n".join(lines + ["No runs yet.", ""]), encoding="utf-8")
        return
    lines += ["> **Our runs, not the paper's tables.** Where the numbers come from:"]
    lines += [f"> - {line}" for line in dict.fromkeys(provenance(row) for _, row in table.iterrows())]
    lines += [">", "> Values in percent: mean ± std over n seeds. 'paper' is the paper's value for the same dataset, "
              "category and variant (its table in 'source'); Δ = ours - paper.", ""]
    shown = table[table["metric"].isin(HEADLINE)]
    fmt = lambda v: "" if pd.isna(v) else f"{v:.2f}"  # noqa: E731
    rows = [{"dataset": r.dataset, "category": r.category, "variant": r.variant,
             "profile": r.profile + ("" if r.overrides == "{}" else f" {r.overrides}"), "weights": r.weights,
             "metric": r.metric, "ours": fmt(r.mean) + ("" if pd.isna(r.std) else f" ± {r.std:.2f}"),
             "n": r.n_seeds, "paper": fmt(r.paper) + ("" if pd.isna(r.paper_std) else f" ± {r.paper_std:.2f}"),
             "Δ": fmt(r.difference), "source": r.paper_source} for r in shown.itertuples()]
    lines += _markdown(pd.DataFrame(rows)) + [""]
    stem.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8", errors=ENCODING_ERRORS)


def _markdown(table: pd.DataFrame) -> list[str]:
    cells = lambda values: "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"  # noqa: E731
    return [cells(table.columns), "|" + "---|" * len(table.columns), *(cells(r) for r in table.itertuples(index=False))]
