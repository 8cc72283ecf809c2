"""PatchCore and PaDiM from anomalib, run on ULSAD's data, image size and backbone weights.

The paper took its baselines from anomalib; so do we, through anomalib's own
models (``anomalib.models.Patchcore`` and ``Padim``): this module only feeds
them. It gives them the images ULSAD's θ sees (S x S, normalised as the backbone
wants, no crop), the same stages and θ's own tensors, so that a comparison differs
in the method alone:

    build(name, config)            the anomalib model, its backbone holding ULSAD's θ
    fit(model, images)             one pass over normal images, then anomalib's fit (coreset, Gaussians)
    predict(model, images)         image scores (N) and anomaly maps (N x S x S), numpy
    evaluate(model, test)          ULSAD's metric keys (ulsad.evaluate) on the predicted maps
    stored_bytes(model)            what the model keeps from its training images

Needs the optional ``anomalib`` package (``pip install anomalib``, the
``baselines`` extra).
"""
from __future__ import annotations

import ctypes
import importlib.metadata
import io
import warnings
from contextlib import redirect_stderr

import numpy as np
import timm
import torch

from .backbone import LAYERS, create_body, get_backbone
from .config import Config
from .data import stack_images
from .evaluate import Predictions, compute_metrics, with_scores
from .train import seed_everything

BASELINES = ("patchcore", "padim")
PADIM_LAYERS = ("layer1", "layer2", "layer3")  # anomalib's default for PaDiM
# PaDiM keeps a random subset of its channels. anomalib knows the subset's size for two
# networks (100 of resnet18's 448, 550 of wide_resnet50_2's 1792); for the others we keep
# the paper backbone's share, 550 / 1792 (54 of EfficientNet-Lite0's 24 + 40 + 112).
PADIM_FEATURES = {"resnet18": 100, "wide_resnet50_2": 550}
PADIM_SHARE = 550 / 1792
# anomalib's default coreset, 10% of the training patches (its greedy selection costs ratio x N^2
# distance evaluations, seconds for a demo category of 100 images x 16 x 16 patches).
CORESET_RATIO = 0.1
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def _return_large_blocks_to_os() -> None:
    """Serve large allocations from mmap, so that freed ones go back to the system.

    anomalib's coreset loop allocates and frees an N x d tensor per step; under
    glibc's adaptive threshold those blocks came from the heap and were not
    reused, and a demo category grew the process past 20 GB. The threshold must
    lie below the smallest such block: 25 images at 128 px make 6 MiB blocks
    (6,400 patches x 233 projected dimensions), and with a threshold of 8 MiB a
    second such fit in one process grew it by 2.5 GB (4 MiB with 1 MiB). Whether
    the heap fragments depends on what the process allocated before, so no test
    reproduces it reliably. No-op off glibc.
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, 1 << 20)
    except (OSError, AttributeError):
        pass


def anomalib_version() -> str | None:
    """The installed anomalib's version, or None when it is missing."""
    try:
        return importlib.metadata.version("anomalib")
    except importlib.metadata.PackageNotFoundError:
        return None


def ulsad_backbone(config: Config) -> tuple[dict, str]:
    """θ's tensors exactly as :func:`ulsad.train.fit` makes them (same seed), and where they came from."""
    seed_everything(config.seed)
    body, source = create_body(config.backbone, config.layers, config.weights, config.allow_random_weights)
    return body.state_dict(), source


def build(name: str, config: Config, coreset_ratio: float = CORESET_RATIO, backbone: tuple | None = None):
    """anomalib's PatchCore (ULSAD's layers) or PaDiM (its own layer1-3) on ULSAD's backbone θ.

    backbone: ``ulsad_backbone(config)``, computed here when not given. The
    model's ``weights_source`` says where θ came from.
    """
    with warnings.catch_warnings():  # anomalib's deprecation notices about modules it does not use here
        warnings.simplefilter("ignore", FutureWarning)
        from anomalib.models import Padim, Patchcore

    state, source = backbone or ulsad_backbone(config)
    spec = get_backbone(config.backbone)
    if name == "patchcore":  # anomalib names the stages as timm does (blocks.2 for EfficientNet's layer2)
        model = Patchcore(backbone=spec.timm_name, layers=[spec.stage(layer) for layer in config.layers],
                          pre_trained=False, coreset_sampling_ratio=coreset_ratio)
    elif name == "padim":
        model = Padim(backbone=spec.timm_name, layers=[spec.stage(layer) for layer in PADIM_LAYERS],
                      pre_trained=False, n_features=padim_features(spec))
    else:
        raise ValueError(f"unknown baseline {name!r}: expected one of {', '.join(BASELINES)}")
    # Both networks end at the stride-16 stage, so θ's tensors fit exactly (strict loading).
    model.model.feature_extractor.feature_extractor.load_state_dict(state)
    model.normalize = spec.normalize
    model.weights_source = source
    return model.eval()


def padim_features(spec) -> int:
    """How many of PaDiM's layer1-3 channels it keeps on this backbone (anomalib's number where it has one)."""
    if spec.name in PADIM_FEATURES:
        return PADIM_FEATURES[spec.name]
    body = timm.create_model(spec.timm_name, pretrained=False, features_only=True,
                             out_indices=[LAYERS.index(layer) for layer in PADIM_LAYERS])
    return round(sum(body.feature_info.channels()) * PADIM_SHARE)


@torch.no_grad()
def fit(model, images: torch.Tensor, batch_size: int = 16):
    """Collect the features of normal images (B x 3 x S x S in [0, 1]), then anomalib's ``fit``:
    PatchCore's coreset subsampling, PaDiM's per-position Gaussians."""
    _return_large_blocks_to_os()
    model.model.train()
    for batch in images.split(batch_size):
        model.model(model.normalize(batch))
    with redirect_stderr(io.StringIO()):  # anomalib's coreset progress bar, unwanted in a chapter
        model.fit()
    return model.eval()


@torch.no_grad()
def predict(model, images: torch.Tensor, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Image scores (N) and anomaly maps (N x S x S, the input's size), as anomalib computes them."""
    model.model.eval()
    scores, maps = [], []
    for batch in images.split(batch_size):
        out = model.model(model.normalize(batch))
        scores.append(out.pred_score.reshape(-1).float().numpy())
        maps.append(out.anomaly_map.reshape(len(batch), *batch.shape[-2:]).float().numpy())
    return np.concatenate(scores), np.concatenate(maps)


def evaluate(model, test, batch_size: int = 16) -> dict:
    """Image AUROC, pixel AUROC and AUPRO of the model's maps on a test split, overall and per anomaly
    type, under the keys of :mod:`ulsad.evaluate` (the same code that scores ULSAD)."""
    _, maps = predict(model, stack_images(test), batch_size)
    masks = np.stack([test[i]["mask"].numpy() > 0 for i in range(len(test))])
    pred = Predictions(np.asarray(test.labels), np.asarray(test.types), masks, test.has_masks,
                       {"combined": maps}, {})
    # Scores as ULSAD takes them (Eq. 10, the map's max), for both methods alike
    return compute_metrics(with_scores(pred), which=("combined",))


def stored_bytes(model) -> int:
    """Bytes of what the model keeps from its training images: PatchCore's memory bank, PaDiM's
    per-position means and inverse covariances. The backbone is not counted."""
    inner = model.model
    if hasattr(inner, "gaussian"):
        kept = [inner.gaussian.mean, inner.gaussian.inv_covariance]
    else:
        kept = [inner.memory_bank]
    return sum(t.numel() * t.element_size() for t in kept)
