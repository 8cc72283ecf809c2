"""Training (Algorithm 1).

θ is frozen and the images are not augmented, so θ's features are computed once
per fit, normalised with the training set's statistics, and reused every epoch.
The quantiles of Sec. 3.5 are then set on normal validation images
(:meth:`ulsad.detector.ULSAD.calibrate`).
"""
from __future__ import annotations

import random
import sys
import time

import numpy as np
import torch
from tqdm.std import tqdm

from . import losses
from .config import Config, get_config
from .data import stack_images
from .detector import ULSAD


def pick_device(preference: str = "auto") -> torch.device:
    """cuda, then mps, then cpu (or exactly what `preference` names)."""
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epochs_bar(epochs: int, progress: bool = True) -> tqdm:
    """The epochs 1..epochs as a text progress bar (tqdm.std, never an ipywidget).

    In a terminal it redraws in place on stderr, as any tqdm bar. Anywhere else (a notebook's
    kernel, a log file) tqdm.auto would draw an ipywidget, which an executed or built notebook
    keeps frozen at "0/N" (its page has no widget script); there the bar writes text to stdout
    instead, at most once per fifth of the epochs and once per 30 s, so that a saved output holds
    a few lines and ends with the final state: "training: 30/30 epochs [elapsed<0, losses]".
    """
    epochs_range = range(1, epochs + 1)
    if not progress or sys.stderr.isatty():
        return tqdm(epochs_range, desc="training", unit="epoch", disable=not progress)
    return tqdm(epochs_range, desc="training", file=sys.stdout, mininterval=30, miniters=max(1, epochs // 5),
                bar_format="{desc}: {n_fmt}/{total_fmt} epochs [{elapsed}<{remaining}{postfix}]")


@torch.no_grad()
def theta_features(detector: ULSAD, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """θ(X) of every image, before normalisation: computed once per fit."""
    return torch.cat([detector.raw_features(x) for x in images.split(batch_size)])


def fit(train, validation, config: Config | None = None, progress: bool = True, on_epoch=None):
    """Algorithm 1: train ψ and φ on normal images, then calibrate on normal validation images.

    Returns the detector (in eval mode) and the loss history, one dict per epoch
    with the mean of each loss term.

    on_epoch(epoch, detector): called after every epoch with the detector in eval mode
    (e.g. to calibrate and evaluate it, for learning curves); a dict it returns is added
    to that epoch's record. Training resumes in train mode; the quantiles are set again
    at the end, so a callback cannot change the result.
    """
    cfg = config or get_config()
    if len(validation) == 0:  # checked now: calibration comes after the whole training
        raise ValueError("calibrating the maps (Sec. 3.5) needs normal validation images, and none were given")
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    detector = ULSAD(cfg).to(device)
    if detector._channels_last:
        detector = detector.to(memory_format=torch.channels_last)

    images = stack_images(train, cfg.batch_size, cfg.num_workers)
    # Read now, not after the epochs: an unreadable validation image must cost no training.
    val_images = stack_images(validation, cfg.batch_size, cfg.num_workers)
    if len(images) < 2:
        raise ValueError(f"training needs at least 2 normal images (BatchNorm), got {len(images)}")
    images = detector.check_images(images)
    u_raw = theta_features(detector, images, cfg.batch_size)
    detector.set_feature_statistics(u_raw)  # Algorithm 1, line 4: μ and σ of the training set
    u_cache = detector.standardize(u_raw)
    del u_raw

    params = [p for m in (detector.frn, detector.global_ae) if m is not None for p in m.parameters()]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.lr_milestones), gamma=0.1)
    order = torch.Generator().manual_seed(cfg.seed)

    history = []
    bar = epochs_bar(cfg.epochs, progress)
    detector.train()
    for epoch in bar:
        start, sums, steps = time.perf_counter(), {}, 0
        batches = torch.randperm(len(images), generator=order).split(cfg.batch_size)
        if len(batches) > 1 and len(batches[-1]) == 1:
            batches = batches[:-1]  # BatchNorm cannot normalise a batch of one 1 x 1 code
        for idx in batches:
            idx = idx.to(device)
            terms = losses.terms(detector(images[idx], u_cache[idx]), cfg)
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            optimizer.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v.detach()
            steps += 1
        schedule.step()
        record = {"epoch": epoch, **{k: float(v) / steps for k, v in sums.items()},
                  "seconds": time.perf_counter() - start}
        if on_epoch is not None:
            detector.eval()
            record.update(on_epoch(epoch, detector) or {})
            detector.train()
        history.append(record)
        # refresh=False: the bar's own interval decides when a line is written, not every epoch
        bar.set_postfix({k: f"{record[k]:.4f}" for k in ("L_pl", "L_pg", "L_lg")}, refresh=False)
    detector.eval()
    detector.calibrate(val_images, batch_size=cfg.batch_size)
    detector.extra["history"] = history
    return detector, history
