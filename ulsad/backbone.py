"""The frozen feature extractor θ (Sec. 3.1) and where its ImageNet weights come from.

θ takes an image, runs a pretrained CNN up to `layer3`, resizes `layer3` to the
size of `layer2` and concatenates the two (1536 channels at S/8 for
wide_resnet50_2), then averages groups of consecutive channels down to c*
(DESIGN.md: 1-D adaptive average pooling along the channel axis).
"""
from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_DIR_ENV = "ULSAD_WEIGHTS_DIR"
_HUB_HOST = ("huggingface.co", 443)
# timm's feature stages of every supported backbone (all ResNets)
RESNET_STAGES = ("act1", "layer1", "layer2", "layer3", "layer4")


class WeightsUnavailable(RuntimeError):
    """No ImageNet weights could be found, and random weights were not allowed."""


def how_to_provide_weights(backbone: str) -> str:
    return (f"No ImageNet weights for {backbone!r} could be loaded. Provide them in one of these ways:\n"
            f"  - let timm download them once (needs access to huggingface.co; they are then cached);\n"
            f"  - put a state dict saved with torch.save at ${WEIGHTS_DIR_ENV}/{backbone}.pth;\n"
            f"  - pass weights='/path/to/checkpoint.pth' (Config.weights or --set weights=...).\n"
            f"Or allow a randomly initialised backbone with allow_random_weights=True "
            f"(results are then not the paper's).")


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        socket.create_connection(_HUB_HOST, timeout=timeout).close()
        return True
    except OSError:
        return False


def _cached_hub_file(backbone: str) -> str | None:
    """The timm weights of `backbone` in the local Hugging Face cache, if any."""
    from huggingface_hub import try_to_load_from_cache

    repo = timm.models.get_pretrained_cfg(backbone).hf_hub_id
    for filename in ("model.safetensors", "pytorch_model.bin"):
        path = try_to_load_from_cache(repo, filename) if repo else None
        if isinstance(path, str):
            return path
    return None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A backbone state dict from a file written by torch.save (plain, or under 'state_dict'/'model')."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"could not read backbone weights from {path}: {e}") from e
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict (a dict of tensors)")
    return obj


def _load_into(body: nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    """Load `state` into the truncated network; every one of its tensors must be there."""
    try:
        missing, _ = body.load_state_dict(state, strict=False)  # layer4 and fc are cut off: ignore them
    except RuntimeError as e:  # tensors of the wrong shape
        raise ValueError(f"{origin} does not fit this backbone: {str(e).splitlines()[1].strip()}") from e
    if missing:
        raise ValueError(f"{origin} does not fit this backbone: {len(missing)} tensors missing, "
                         f"e.g. {', '.join(missing[:3])}")


def create_body(backbone: str, layers: tuple[str, ...], weights: str | None = "imagenet",
                allow_random: bool = False) -> tuple[nn.Module, str]:
    """The truncated timm network returning `layers`, and where its weights came from.

    `weights` is "imagenet" (try $ULSAD_WEIGHTS_DIR/<backbone>.pth, the Hugging Face
    cache, then a download), "random", or a path to a checkpoint file. The returned
    source string is recorded in every checkpoint and result table.
    """
    if any(layer not in RESNET_STAGES for layer in layers):
        raise ValueError(f"layers={layers}: expected names from {RESNET_STAGES}")
    out_indices = tuple(RESNET_STAGES.index(layer) for layer in layers)
    body = timm.create_model(backbone, pretrained=False, features_only=True, out_indices=out_indices)

    if weights is None:  # the caller loads θ's tensors from a ULSAD checkpoint next
        return body, "checkpoint"
    if weights == "random":
        _warn_random(backbone, "weights='random' was asked for")
        return body, "random"
    if weights != "imagenet":
        _load_into(body, read_state_dict(weights), f"weights file {weights}")
        return body, f"file:{Path(weights).name}"

    local = Path(os.environ.get(WEIGHTS_DIR_ENV, "")) / f"{backbone}.pth"
    if os.environ.get(WEIGHTS_DIR_ENV) and local.is_file():
        _load_into(body, read_state_dict(local), f"weights file {local}")
        return body, f"file:{local.name}"
    cached = _cached_hub_file(backbone)
    if cached or _hub_reachable():
        overlay = dict(file=cached) if cached else None
        body = timm.create_model(backbone, pretrained=True, features_only=True,
                                 out_indices=out_indices, pretrained_cfg_overlay=overlay)
        return body, "imagenet"
    if not allow_random:
        raise WeightsUnavailable(how_to_provide_weights(backbone))
    _warn_random(backbone, "no ImageNet weights could be found")
    return body, "random"


def _warn_random(backbone: str, why: str) -> None:
    warnings.warn(f"ULSAD uses a RANDOMLY INITIALISED {backbone} ({why}): "
                  f"results are not comparable with the paper's.", stacklevel=3)


class FeatureExtractor(nn.Module):
    """θ: image in [0, 1] (B x 3 x S x S) -> reduced features U (B x c* x S/8 x S/8), frozen."""

    def __init__(self, backbone: str, layers: tuple[str, ...], c_star: int,
                 weights: str | None = "imagenet", allow_random: bool = False):
        super().__init__()
        self.body, self.weights_source = create_body(backbone, layers, weights, allow_random)
        self.body.eval().requires_grad_(False)
        self.c_star = c_star
        self.in_channels = sum(self.body.feature_info.channels())
        if c_star > self.in_channels:
            raise ValueError(f"c_star={c_star} exceeds the {self.in_channels} channels of "
                             f"{backbone} {layers}")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.body.eval()  # θ is frozen: its BatchNorm statistics must never move
        return self

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet normalisation, the input both θ and the global autoencoder φ see."""
        return (images - self.mean) / self.std

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feats = self.body(self.normalize(images))
        size = feats[0].shape[-2:]
        feats = [f if f.shape[-2:] == size else
                 F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats]
        u = torch.cat(feats, dim=1)
        return reduce_channels(u, self.c_star)


def reduce_channels(u: torch.Tensor, c_star: int) -> torch.Tensor:
    """Average consecutive channels: B x C x H x W -> B x c* x H x W (adaptive 1-D pooling)."""
    b, c, h, w = u.shape
    if c == c_star:
        return u
    pooled = F.adaptive_avg_pool1d(u.permute(0, 2, 3, 1).reshape(b * h * w, 1, c), c_star)
    return pooled.reshape(b, h, w, c_star).permute(0, 3, 1, 2).contiguous()
