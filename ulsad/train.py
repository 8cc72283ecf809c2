"""Training (Algorithm 1) and calibration of the quantiles (Sec. 3.5).

θ is frozen and the images are not augmented, so θ's features are computed once
per fit, normalised with the training set's statistics, and reused every epoch.
"""
from __future__ import annotations

import random
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from . import maps
from .config import Config, get_config
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


def stack_images(data, batch_size: int = 32, num_workers: int = 0) -> torch.Tensor:
    """All images of `data` as one N x 3 x S x S tensor.

    `data` is a tensor of images, or a dataset whose items are image tensors or
    dicts with an 'image' (as :func:`ulsad.data.load` gives).
    """
    if isinstance(data, torch.Tensor):
        return data
    if not isinstance(data, (Dataset, list, tuple)):
        raise TypeError(f"expected an image tensor or a dataset of images, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError("the image set is empty")
    batches = [b["image"] if isinstance(b, dict) else b
               for b in DataLoader(data, batch_size=batch_size, num_workers=num_workers)]
    return torch.cat(batches)


@torch.no_grad()
def feature_cache(detector: ULSAD, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """θ(X) for every training image, then μ and σ (float64) set on the detector and U normalised."""
    u = torch.cat([detector.raw_features(detector.check_images(x)) for x in images.split(batch_size)])
    var, mean = torch.var_mean(u.double(), dim=(0, 2, 3), correction=0)
    detector.mu.copy_(mean)
    # A channel that never varies (possible with a random θ) would divide by zero.
    detector.sigma.copy_(var.sqrt().clamp_min(1e-6))
    return detector.standardize(u)


@torch.no_grad()
def validation_maps(detector: ULSAD, images: torch.Tensor, batch_size: int):
    """Raw M^l and M^g of normal validation images, on the CPU (M^g None without a global branch)."""
    detector.eval()
    local, global_ = [], []
    for x in images.split(batch_size):
        m_l, m_g = detector.raw_maps(x)
        local.append(m_l.cpu())
        if m_g is not None:
            global_.append(m_g.cpu())
    return torch.cat(local), torch.cat(global_) if global_ else None


def calibrate(detector: ULSAD, validation, alpha: float | None = None, beta: float | None = None,
              batch_size: int | None = None):
    """Set q_α and q_β of both maps from normal validation images (Sec. 3.5)."""
    cfg = detector.config
    alpha = cfg.alpha if alpha is None else alpha
    beta = cfg.beta if beta is None else beta
    m_l, m_g = validation_maps(detector, stack_images(validation), batch_size or cfg.batch_size)
    q = lambda m: maps.quantiles(m, alpha, beta, cfg.quantile_samples, cfg.seed)  # noqa: E731
    detector.set_quantiles(q(m_l), None if m_g is None else q(m_g))
    return detector


def fit(train, validation, config: Config | None = None, progress: bool = True):
    """Algorithm 1: train ψ and φ on normal images, then calibrate on normal validation images.

    Returns the detector (in eval mode) and the loss history, one dict per epoch
    with the mean of each loss term.
    """
    cfg = config or get_config()
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    detector = ULSAD(cfg).to(device)
    if detector._channels_last:
        detector = detector.to(memory_format=torch.channels_last)

    images = stack_images(train, cfg.batch_size, cfg.num_workers)
    if len(images) < 2:
        raise ValueError(f"training needs at least 2 normal images (BatchNorm), got {len(images)}")
    images = detector.check_images(images)
    u_cache = feature_cache(detector, images, cfg.batch_size)

    params = [p for m in (detector.frn, detector.global_ae) if m is not None for p in m.parameters()]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.lr_milestones), gamma=0.1)
    order = torch.Generator().manual_seed(cfg.seed)

    history = []
    bar = tqdm(range(1, cfg.epochs + 1), desc="training", unit="epoch", disable=not progress)
    detector.train()
    for epoch in bar:
        start, sums, steps = time.perf_counter(), {}, 0
        batches = torch.randperm(len(images), generator=order).split(cfg.batch_size)
        if len(batches) > 1 and len(batches[-1]) == 1:
            batches = batches[:-1]  # BatchNorm cannot normalise a batch of one 1 x 1 code
        for idx in batches:
            idx = idx.to(device)
            terms = detector.losses(u_cache[idx], images[idx])
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            optimizer.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v.detach()
            steps += 1
        schedule.step()
        record = {"epoch": epoch, **{k: float(v) / steps for k, v in sums.items()},
                  "seconds": time.perf_counter() - start}
        history.append(record)
        bar.set_postfix({k: f"{record[k]:.4f}" for k in ("L_pl", "L_pg", "L_lg")})
    detector.eval()
    calibrate(detector, validation)
    detector.extra["history"] = history
    return detector, history
