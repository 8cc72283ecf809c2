"""How long training will take, said before it starts.

A fit's time is nearly proportional to its image-epochs (epochs x training images): θ runs once
per fit and ψ and φ run once per image and epoch (Algorithm 1, with θ's features cached). So one
number per setting, seconds per image-epoch, predicts a fit. Those numbers are measured:

* ``speeds.csv`` (package data) holds the medians of committed runs, written by
  ``python benchmarks/speeds.py`` from ``results/*/*/runs.csv`` and the machine they ran on;
* for a device or setting it lacks, :func:`calibrate` times a few training steps on the device at
  hand (seconds), with θ's weights left random: their values do not change the time.

The estimate says which of the two it comes from, or that there is none.
"""
from __future__ import annotations

import csv
import json
import statistics
import time
import warnings
from dataclasses import dataclass
from importlib.resources import files

import torch

from . import losses
from .config import Config

SPEEDS_FILE = "speeds.csv"
SPEED_KEY = ("device", "backbone", "image_size", "c_star")  # what a measured speed is looked up by


@dataclass(frozen=True)
class Estimate:
    """A predicted duration and where the prediction comes from; seconds is None when there is none."""

    seconds: float | None
    source: str

    def __str__(self) -> str:
        if self.seconds is None:
            return f"time unknown ({self.source})"
        return f"about {duration(self.seconds)} ({self.source})"


def duration(seconds: float) -> str:
    """'40 s', '12 min', '3.5 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def measured_speeds() -> list[dict]:
    """The rows of speeds.csv: device, backbone, image_size, c_star, seconds_per_image_epoch, runs, machine."""
    with files("ulsad").joinpath(SPEEDS_FILE).open(encoding="utf-8") as f:
        return [{**row, "image_size": int(row["image_size"]), "c_star": int(row["c_star"]),
                 "seconds_per_image_epoch": float(row["seconds_per_image_epoch"]), "runs": int(row["runs"])}
                for row in csv.DictReader(f)]


def lookup(config: Config, device_type: str) -> Estimate:
    """Seconds per image-epoch of this setting on this kind of device, from speeds.csv; None if unmeasured."""
    for row in measured_speeds():
        if (row["device"], row["backbone"], row["image_size"], row["c_star"]) == \
                (device_type, config.backbone, config.image_size, config.c_star):
            return Estimate(row["seconds_per_image_epoch"],
                            f"median of {row['runs']} committed runs on {row['machine']}")
    return Estimate(None, f"no measured speed of {config.backbone} at {config.image_size} px, "
                          f"c*={config.c_star} on {device_type}")


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a wall-clock time covers it (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(work, device: torch.device, reps: int = 3, warmup: int = 2) -> float:
    """Median wall time of `reps` calls of `work` on `device`, after `warmup` calls that pay for
    allocation and kernel choice."""
    for _ in range(warmup):
        work()
    synchronize(device)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        work()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def calibrate(config: Config, device: torch.device, steps: int = 3) -> Estimate:
    """Seconds per image-epoch on `device`, timed now: θ on one batch and a training step of ψ and φ,
    each the median of `steps` runs on random images. θ's weights are random here, which leaves its
    time unchanged and needs no download. Loading the images and calibrating the maps are left out,
    so this is a lower bound on what speeds.csv's whole runs measure."""
    from .detector import ULSAD  # the detector imports the config; imported here to keep this module light

    cfg = config.replace(weights="random", allow_random_weights=True, device=str(device))
    with warnings.catch_warnings():  # random θ is the point here, not news
        warnings.simplefilter("ignore")
        detector = ULSAD(cfg).to(device).train()
    params = [p for m in (detector.frn, detector.global_ae) if m is not None for p in m.parameters()]
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    images = torch.rand(cfg.batch_size, 3, cfg.image_size, cfg.image_size, generator=torch.Generator().manual_seed(0))

    detector.set_feature_statistics(detector.raw_features(images))  # ψ and φ then see U as in training
    u = detector.features(images)
    theta_s = median_seconds(lambda: detector.features(images), device, steps)

    def step():
        total = losses.terms(detector(images, u), cfg)["total"]
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()

    step_s = median_seconds(step, device, steps)
    per_image = (step_s + theta_s / cfg.epochs) / cfg.batch_size
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return Estimate(per_image, f"{steps} training steps timed now on {name}")


_timed: dict[tuple[str, str], Estimate] = {}  # calibrations of this process, by configuration and device


def seconds_per_image_epoch(config: Config, device_type: str, device: torch.device | None = None) -> Estimate:
    """Measured speed from speeds.csv, else timed on `device` (once per process) when it is of
    `device_type`, else unknown."""
    known = lookup(config, device_type)
    if known.seconds is not None or device is None or device.type != device_type:
        return known
    key = (json.dumps(config.to_dict(), sort_keys=True), str(device))
    if key not in _timed:
        _timed[key] = calibrate(config, device)
    return _timed[key]


def training_time(config: Config, n_train: int, runs: int, speed: Estimate) -> Estimate:
    """`runs` fits of `n_train` images for config.epochs epochs each, at `speed` seconds per image-epoch."""
    if speed.seconds is None:
        return speed
    return Estimate(runs * config.epochs * n_train * speed.seconds, speed.source)
