"""What every chapter of the book does first: pick the profile, find or make the data,
say which backbone weights are in use, and share trained detectors between chapters.

Nothing here is needed to use ULSAD; it keeps the chapters short and each one
runnable alone on a fresh kernel. Files go under :func:`workdir` (``data/``,
``checkpoints/``, ``results/``), never into a real dataset's folder.
"""
from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import __version__, data, estimate
from ..backbone import FeatureExtractor, describe_weights
from ..config import SYNTHETIC_SIZES, Config, default_profile, get_config
from ..detector import ULSAD, native_bfloat16
from ..reproduce import Run, data_version, reproduce
from ..train import fit, pick_device


# The synthetic categories whose `demo` results the book commits (results/synthetic-demo/) and whose
# runs the reproduction chapters read: the five LOCO-like objects and the texture.
REPRODUCED = data.synth.LOCO_LIKE_CATEGORIES
# The category chapters 4-8 follow: the one where, in this book's profile, the local map finds the
# structural defects and the global map the logical anomalies (chapter 9's main runs measure both).
RUNNING_EXAMPLE = "lunch_box"
# Part 2's main table: ULSAD as this book's profile runs it, and with ψ's final ReLU as the authors' code has it.
MAIN_VARIANTS = ("full", "authors_relu")
MAIN_SEEDS = 3
# The profile whose results on the synthetic benchmark are committed (results/synthetic-demo/).
COMMITTED_PROFILE = "demo"
# A chapter whose results would take longer than this to train shows the committed ones instead, unless
# ULSAD_RECOMPUTE is set; ULSAD_PLAN_DEVICE (cuda, cpu, ...) plans for another device than the one at hand.
TRAINING_LIMIT_S = 600


def workdir() -> Path:
    """$ULSAD_HOME, else the repository holding this book (found from the current folder), else ~/ulsad."""
    if os.environ.get("ULSAD_HOME"):
        return Path(os.environ["ULSAD_HOME"])
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "_toc.yml").is_file() and (folder / "ulsad").is_dir():
            return folder
    return Path.home() / "ulsad"


@dataclass
class Session:
    """The profile, configuration, data and device a chapter runs with."""

    profile: str
    overrides: dict
    dataset: str
    root: Path
    category: str
    device: torch.device

    @property
    def config(self) -> Config:
        return get_config(self.profile, **self.overrides)

    def variant_config(self, variant: str = "full") -> Config:
        return get_config(self.profile, None if variant == "full" else variant, **self.overrides)

    def data_version(self, category: str | None = None) -> str:
        """Which generator drew the synthetic images ("" for real data): a detector trained on others is stale."""
        return data_version(self.dataset, self.root, category or self.category)

    def run_id(self, variant: str = "full") -> str:
        """The ``config_id`` that ``reproduce`` gives this session's run of ``variant``: configuration and data."""
        overrides = {k: v for k, v in self.overrides.items() if k != "seed"}
        return Run(self.dataset, str(self.root), self.category, variant, self.config.seed, self.profile,
                   overrides).identity()["config_id"]

    @property
    def synthetic(self) -> bool:
        return self.dataset == "synthetic"

    def load(self, split: str, category: str | None = None) -> data.AnomalyDataset:
        return data.load(self.dataset, self.root, category or self.category, split,
                         image_size=self.config.image_size, val_fraction=self.config.val_fraction,
                         seed=self.config.seed)

    def checkpoint_path(self, variant: str = "full", category: str | None = None) -> Path:
        return (workdir() / "checkpoints" / self.profile / self.dataset
                / f"{category or self.category}-{variant}-seed{self.config.seed}.ckpt")

    def categories(self) -> list[str]:
        """Every category of the data at hand; on the synthetic benchmark, the ones the reproduction
        chapters cover (``REPRODUCED``), generated on first use."""
        if not self.synthetic:
            return data.categories(self.dataset, self.root)
        for category in REPRODUCED:
            _synthetic_root(self.profile, self.config.image_size, category)
        return list(REPRODUCED)

    def main_runs(self, image_size: int | None = None, categories=None, seeds: int = MAIN_SEEDS,
                  verbose: bool = False, executor: str = "local"):
        """Part 2's main runs, which chapters 3, 5, 8-11 quote: ULSAD in this profile and with the authors'
        final ReLU (``MAIN_VARIANTS``), seeds 0 to ``seeds - 1``, on every category of :meth:`categories`.
        Made once into ``results_dir("main")`` and read from there afterwards; the rows of runs.csv.

        image_size: another size than the profile's, on the synthetic benchmark drawn at that size (its own
        folder), with the blur scaled in proportion; its runs go to ``results_dir("main-<size>px")``.
        """
        overrides = {k: v for k, v in self.overrides.items() if k != "seed"}
        categories = list(categories or self.categories())
        root, out = self.root, self.results_dir("main")
        if image_size is not None and image_size != self.config.image_size:
            if not self.synthetic:
                raise ValueError("main_runs(image_size=...) draws the synthetic benchmark at that size; "
                                 f"with {self.dataset}, set image_size in the profile instead")
            ratio = image_size / self.config.image_size
            overrides.update(image_size=image_size, blur_sigma=self.config.blur_sigma * ratio,
                             blur_kernel=2 * round((self.config.blur_kernel - 1) * ratio / 2) + 1)
            for category in categories:
                root = _synthetic_root(self.profile, image_size, category)
            out = self.results_dir(f"main-{image_size}px")
        return reproduce(self.dataset, os.path.relpath(root), categories, seeds=seeds, variants=MAIN_VARIANTS,
                         profile=self.profile, overrides=overrides, out=out, verbose=verbose, executor=executor)

    def announce(self, what: str, config: Config, n_train: int, fits: int = 1) -> None:
        """Say what is about to be trained, and for about how long on this session's device."""
        speed = estimate.seconds_per_image_epoch(config, self.device.type, self.device)
        print(f"training {what}: {f'{fits} fits of ' if fits > 1 else ''}{config.epochs} epochs x {n_train} "
              f"images on {self.device.type}, {estimate.training_time(config, n_train, fits, speed)}")

    def results_dir(self, experiment: str) -> Path:
        """Where an experiment's `reproduce` runs and summaries go; runs already there are reused.

        The `demo` results on the synthetic benchmark are committed with the book
        (results/synthetic-demo/), so that building it does not retrain them.
        """
        return workdir() / "results" / f"{self.dataset}-{self.profile}" / experiment

    def provenance(self, weights_source: str) -> str:
        """One line saying where a number comes from, printed beside every result."""
        what = "SYNTHETIC benchmark" if self.synthetic else f"{self.dataset} (real data)"
        weights = f"{describe_weights(weights_source)} backbone weights"
        line = f"{what} / {self.category}, {weights}, profile '{self.profile}'"
        if self.synthetic or weights_source == "random":
            line += " -- not comparable with the paper's numbers"
        return line


def _synthetic_root(profile: str, image_size: int, category: str) -> Path:
    """The synthetic benchmark for a profile, generated once (a few seconds per category), and again
    when what is on disk was made by another generator or with other sizes."""
    own_size = get_config(profile).image_size
    root = workdir() / "data" / (f"synthetic-{profile}" if image_size == own_size
                                 else f"synthetic-{profile}-{image_size}px")
    n_train, n_val, n_test = SYNTHETIC_SIZES[profile]
    made_by = data.synth.stamp(root, category) or {}
    wanted = {"generator": data.synth.GENERATOR_VERSION, "seed": 0, "image_size": image_size,
              "counts": data.synth.split_counts(n_train, n_val, n_test)}
    if made_by != wanted:
        data.synth.generate(root, [category], seed=0, image_size=image_size,
                            n_train=n_train, n_val=n_val, n_test=n_test)
    return root


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings in a chapter without the source file's path: the path is the reader's machine, not news."""
    print(f"{category.__name__}: {message}", file=file or sys.stderr)


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def _committed_rows(profile: str, experiment: str) -> int:
    """How many fits results_dir(experiment) holds for `profile` on the synthetic benchmark: one per row of
    its runs.csv (ULSAD) and baselines.csv (a baseline, trained or fitted)."""
    folder = workdir() / "results" / f"synthetic-{profile}" / experiment
    return sum(max(0, len(path.read_text(encoding="utf-8").splitlines()) - 1)
               for path in (folder / "runs.csv", folder / "baselines.csv") if path.is_file())


def plan(profile: str, reads: tuple[str, ...], device: torch.device) -> tuple[str, list[str]]:
    """The profile a chapter that reads the results of `reads` runs in, and the lines that say why.

    The chapter's fits are those committed for COMMITTED_PROFILE, minus those this profile already has.
    They are trained here when their estimated time is within TRAINING_LIMIT_S or ULSAD_RECOMPUTE is
    set; otherwise the chapter shows the committed results, in their profile.
    """
    if profile == COMMITTED_PROFILE or not reads:
        return profile, []
    runs = sum(_committed_rows(COMMITTED_PROFILE, e) for e in reads)
    runs -= min(runs, sum(_committed_rows(profile, e) for e in reads))
    if runs == 0:
        return profile, []
    cfg, n_train = get_config(profile), SYNTHETIC_SIZES[profile][0]
    kind = os.environ.get("ULSAD_PLAN_DEVICE") or device.type
    speed = estimate.seconds_per_image_epoch(cfg, kind, device)
    time_needed = estimate.training_time(cfg, n_train, runs, speed)
    lines = [f"this chapter's results in profile '{profile}': {runs} fits ({cfg.epochs} epochs x {n_train} "
             f"images each, a baseline's counted as ULSAD's) on {kind}, {time_needed}"]
    if _flag("ULSAD_RECOMPUTE"):
        return profile, lines + ["ULSAD_RECOMPUTE is set: training them"]
    if time_needed.seconds is not None and time_needed.seconds <= TRAINING_LIMIT_S:
        return profile, lines
    over = "time unknown" if time_needed.seconds is None else f"more than {TRAINING_LIMIT_S // 60} min"
    return COMMITTED_PROFILE, lines + [
        f"{over}: this chapter shows the committed results of profile '{COMMITTED_PROFILE}' "
        f"(results/synthetic-{COMMITTED_PROFILE}/) and runs in that profile; set ULSAD_RECOMPUTE=1 "
        f"before this cell to train them here instead"]


def setup(category: str = RUNNING_EXAMPLE, profile: str | None = None, quiet: bool = False,
          reads: tuple[str, ...] = (), **overrides) -> Session:
    """The first cell of every chapter.

    A real dataset is used when ``ULSAD_DATASET`` names one and ``ULSAD_DATA_ROOT``
    holds it (the category then comes from ``ULSAD_CATEGORY``); otherwise the
    synthetic benchmark, made on first use. Warnings are shown from then on without the
    path of the file that raised them.

    reads: the experiments (folders of ``results/``) whose runs the chapter shows. On the synthetic
    benchmark, their cost in this profile is printed first, and a chapter that would train for more
    than TRAINING_LIMIT_S runs in COMMITTED_PROFILE instead, whose results are committed (:func:`plan`).
    """
    warnings.showwarning = _show_warning
    profile = profile or default_profile()
    name, real_root = os.environ.get("ULSAD_DATASET"), os.environ.get("ULSAD_DATA_ROOT")
    if not name or name == "synthetic":
        profile, lines = plan(profile, tuple(reads), pick_device(get_config(profile, **overrides).device))
        for line in lines if not quiet else ():
            print(line)
    cfg = get_config(profile, **overrides)
    if name and name != "synthetic":
        if not real_root or not Path(real_root).is_dir():
            raise data.DataError(f"ULSAD_DATASET={name} but ULSAD_DATA_ROOT={real_root!r} is not a folder; "
                                 f"expected the folder holding the {name} categories")
        category = os.environ.get("ULSAD_CATEGORY", data.categories(name, real_root)[0])
        root = Path(real_root)
    else:
        name, root = "synthetic", _synthetic_root(profile, cfg.image_size, category)
    session = Session(profile, overrides, name, root, category, pick_device(cfg.device))
    if not quiet:
        device = str(session.device)
        if session.device.type == "cuda":
            device += (f" ({torch.cuda.get_device_name(session.device)}, "
                       f"{'bfloat16' if cfg.amp and native_bfloat16(session.device) else 'float32'})")
        print(f"ulsad {__version__} | torch {torch.__version__} | device: {device} | "
              f"profile: {profile} ({cfg.backbone}, {cfg.image_size} px, c*={cfg.c_star}, "
              f"{cfg.epochs} epochs)")
        print(f"data: {name} / {category} at {os.path.relpath(root)}"
              + (" (generated; no download needed)" if session.synthetic else ""))
        theta = FeatureExtractor(cfg.backbone, cfg.layers, cfg.c_star, cfg.weights, cfg.allow_random_weights)
        print(f"backbone weights: {describe_weights(theta.weights_source)}")
    return session


def trained_detector(session: Session, variant: str = "full", retrain: bool = False,
                     progress: bool = True, category: str | None = None):
    """The detector of an earlier chapter if its checkpoint matches the configuration and was trained on
    the same images (the synthetic generator's version), else a new one.

    Returns (detector, history); the history is the one saved with the checkpoint.
    """
    cfg = session.variant_config(variant)
    path = session.checkpoint_path(variant, category)
    if path.is_file() and not retrain:
        try:
            detector = ULSAD.load(path, map_location=session.device)
        except ValueError as e:  # written by another version of the package
            print(f"not reusing {path}: {e}; training a new detector")
        else:
            same_images = detector.extra.get("data_version") == session.data_version(category)
            if detector.config == cfg and same_images:
                return detector, detector.extra.get("history", [])
            if not same_images:
                print(f"not reusing {path}: trained on other images than these; training a new detector")
    train_set = session.load("train", category)
    session.announce(f"ULSAD ({variant}) on {category or session.category}", cfg, len(train_set))
    detector, history = fit(train_set, session.load("validation", category), cfg, progress=progress)
    detector.extra["data_version"] = session.data_version(category)
    detector.save(path)
    return detector, history
