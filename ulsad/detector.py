"""The ULSAD detector: θ, ψ and φ put together (Fig. 2), its maps, and its checkpoint file."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import __version__, maps
from .backbone import FeatureExtractor
from .config import Config
from .models import FRN, GlobalAutoencoder

FORMAT = "ulsad-detector"
FORMAT_VERSION = 1
# Fields that change the shape of a tensor in the checkpoint.
ARCHITECTURE_FIELDS = ("image_size", "backbone", "layers", "c_star", "ae_width", "frn_final_relu")
CHECKPOINT_FIELDS = {"config": dict, "state_dict": dict, "weights_source": str}  # what load() needs, by type


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def native_bfloat16(device: torch.device) -> bool:
    """Whether `device` is a CUDA GPU with bfloat16 arithmetic (compute capability 8.0, Ampere, and newer).
    Older ones (a T4, say) only emulate it, slower than float32, so config.amp leaves them in float32."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8


@dataclass
class Reconstructions:
    """What one forward pass computes (Fig. 2), each B x c* x h* x w*, float32."""

    u: torch.Tensor  # U: θ's features, normalised (Algorithm 1, line 4)
    u_tilde1: torch.Tensor  # Ũ': ψ's reconstruction of U (local branch, Eq. 1 and 7)
    u_tilde2: torch.Tensor  # Ũ'': ψ's second half, matched to Û by L_lg (Eq. 6 and 8)
    u_hat: torch.Tensor | None  # Û: φ's output from the whole image (global branch); None without one


class ULSAD(nn.Module):
    """θ (frozen), ψ (`frn`), φ (`global_ae`), the feature statistics μ, σ and the quantiles.

    `weights=None` builds θ without looking for ImageNet weights: its tensors are
    about to be loaded from a checkpoint.
    """

    def __init__(self, config: Config, weights: str | None = "config"):
        super().__init__()
        self.config = config
        c = config.c_star
        self.theta = FeatureExtractor(config.backbone, config.layers, c,
                                      config.weights if weights == "config" else weights,
                                      config.allow_random_weights)
        self.frn = FRN(c, final_relu=config.frn_final_relu)
        self.global_ae = GlobalAutoencoder(c, config.image_size, config.ae_width) \
            if config.has_global_branch else None
        self.register_buffer("mu", torch.zeros(c, dtype=torch.float64))
        self.register_buffer("sigma", torch.ones(c, dtype=torch.float64))
        # q_α^l, q_β^l, q_α^g, q_β^g; NaN until calibrate() has seen validation images
        self.register_buffer("q", torch.full((4,), float("nan")))
        self.extra: dict = {}  # saved with the checkpoint: the loss history, where it was trained

    @property
    def device(self) -> torch.device:
        return self.mu.device

    @property
    def weights_source(self) -> str:
        return self.theta.weights_source

    # -- inputs ---------------------------------------------------------------
    def check_images(self, x: torch.Tensor) -> torch.Tensor:
        """Images must be B x 3 x S x S, finite; returns them on the detector's device."""
        s = self.config.image_size
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3 or x.shape[2:] != (s, s):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected images of shape B x 3 x {s} x {s} (RGB at the configured "
                             f"image_size={s}), got {shape}")
        if not torch.isfinite(x).all():
            raise ValueError("images contain NaN or infinite values")
        x = x.to(self.device, torch.float32)
        return x.contiguous(memory_format=torch.channels_last) if self._channels_last else x

    @property
    def _channels_last(self) -> bool:
        return self.config.channels_last and self.device.type == "cuda"

    def autocast(self):
        """bfloat16 autocast (no loss scaling needed) on a GPU that computes in it, nothing elsewhere."""
        if self.config.amp and native_bfloat16(self.device):
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- Algorithm 1 ----------------------------------------------------------
    @torch.no_grad()
    def raw_features(self, x: torch.Tensor) -> torch.Tensor:
        """θ(X) before normalisation (float32)."""
        with self.autocast():
            return self.theta(self.check_images(x)).float()

    @torch.no_grad()
    def set_feature_statistics(self, u_raw: torch.Tensor) -> None:
        """μ and σ of every channel over all training features (Algorithm 1, line 4), in float64."""
        var, mean = torch.var_mean(u_raw.double(), dim=(0, 2, 3), correction=0)
        self.mu.copy_(mean)
        # A channel that never varies (possible with a random θ) would divide by zero.
        self.sigma.copy_(var.sqrt().clamp_min(1e-6))

    def standardize(self, u: torch.Tensor) -> torch.Tensor:
        """Algorithm 1, line 4: U <- (U - μ) / σ."""
        return ((u - self.mu.view(1, -1, 1, 1)) / self.sigma.view(1, -1, 1, 1)).float()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """U: the normalised features of images in [0, 1] (θ, then line 4)."""
        return self.standardize(self.raw_features(x))

    def forward(self, x: torch.Tensor, u: torch.Tensor | None = None) -> Reconstructions:
        """One pass of Fig. 2: U, ψ's Ũ' and Ũ'', and φ's Û (None without a global branch).

        `u`: the images' normalised features when already known (training caches them).
        """
        x = self.check_images(x)
        u = self.features(x) if u is None else u
        with self.autocast():
            u_tilde1, u_tilde2 = self.frn(u)
            u_hat = None if self.global_ae is None else self.global_ae(self.theta.normalize(x))
        return Reconstructions(u, u_tilde1.float(), u_tilde2.float(), None if u_hat is None else u_hat.float())

    # -- Sec. 3.5 -------------------------------------------------------------
    @torch.no_grad()
    def raw_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """M^l (Eq. 7) and M^g (Eq. 8, or the global target's residual) resized to S x S,
        before normalisation and blur (:func:`ulsad.maps.raw_maps`)."""
        if self.training:
            raise RuntimeError("maps need the detector in eval mode (BatchNorm with its running "
                               "statistics): call detector.eval() first")
        m_l, m_g = maps.raw_maps(self(x), self.config)
        size = self.config.image_size
        return maps.upsample(m_l, size), None if m_g is None else maps.upsample(m_g, size)

    @torch.no_grad()
    def raw_maps_of(self, images: torch.Tensor, batch_size: int | None = None):
        """:meth:`raw_maps` of many images, batch by batch, on the CPU (M^g None without a global branch)."""
        self.eval()
        local, global_ = [], []
        for x in images.split(batch_size or self.config.batch_size):
            m_l, m_g = self.raw_maps(x)
            local.append(m_l.cpu())
            if m_g is not None:
                global_.append(m_g.cpu())
        return torch.cat(local), torch.cat(global_) if global_ else None

    def calibrate(self, images: torch.Tensor, alpha: float | None = None, beta: float | None = None,
                  batch_size: int | None = None) -> "ULSAD":
        """q_α and q_β of both raw maps over normal validation images (Sec. 3.5), which Eq. (9) maps to 0, 0.1."""
        cfg = self.config
        alpha = cfg.alpha if alpha is None else alpha
        beta = cfg.beta if beta is None else beta
        m_l, m_g = self.raw_maps_of(images, batch_size)
        q = lambda m: maps.quantiles(m, alpha, beta, cfg.quantile_samples, cfg.seed)  # noqa: E731
        self.set_quantiles(q(m_l), None if m_g is None else q(m_g))
        return self

    def set_quantiles(self, q_local: tuple[float, float], q_global: tuple[float, float] | None):
        self.q.copy_(torch.tensor([*q_local, *(q_global or (float("nan"),) * 2)]))

    @property
    def calibrated(self) -> bool:
        return not torch.isnan(self.q[:2]).any().item()

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Maps and scores for a batch of images in [0, 1], B x 3 x S x S.

        Returns `local` and `global` (each normalised by Eq. 9 and blurred), `combined`
        (their mean) and `score` (Eq. 10), on the CPU; `global` is None without a
        global branch.
        """
        if not self.calibrated:
            raise RuntimeError("the detector has no quantiles yet: train it with fit() or call "
                               "calibrate() with normal validation images")
        cfg = self.config
        m_l, m_g = self.raw_maps(x)
        local, global_, combined = maps.final_maps(m_l, m_g, self.q.tolist(), cfg.blur_sigma, cfg.blur_kernel)
        out = {"local": local, "global": global_, "combined": combined,
               "score": maps.image_score(combined)}
        return {k: None if v is None else v.cpu() for k, v in out.items()}

    # -- checkpoint -----------------------------------------------------------
    def save(self, path: str | Path, **extra) -> Path:
        """Write weights, configuration, statistics, quantiles and version to one file, atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "ulsad_version": __version__,
                   "config": self.config.to_dict(), "weights_source": self.weights_source,
                   "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
                   "extra": {**self.extra, **extra}}
        # One name per target, so that a save killed outright leaves one file that the next save replaces.
        tmp = path.with_name(path.name + ".part")
        try:
            torch.save(payload, tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)  # half written: nothing in it is worth keeping
            raise
        tmp.chmod(0o666 & ~_umask())  # as readable as any other file the user writes
        try:
            os.replace(tmp, path)
        except OSError as e:  # the trained detector is in tmp: never throw it away
            raise OSError(f"the detector is saved in {tmp}, but it could not replace {path} "
                          f"({e.strerror or e}); move {tmp} there yourself") from None
        return path

    @classmethod
    def load(cls, path: str | Path, config: Config | None = None,
             map_location: str | torch.device = "cpu") -> "ULSAD":
        """Read a detector written by :meth:`save` (with ``weights_only=True``).

        Everything is checked here, so that a damaged or edited file fails at once,
        in one line naming it, and not mid-predict or with NaN scores: the format
        version, every field, the configuration, each tensor's name and shape against
        a detector built from that configuration, and finite values. When `config`
        is given, a checkpoint whose architecture differs from it is refused too.
        """
        path = Path(path)
        payload = _read_checkpoint(path, map_location)
        saved = _saved_config(path, payload["config"])
        if config is not None:
            _check_same_architecture(path, saved, config)
        try:
            detector = cls(saved, weights=None)
        except ValueError as e:  # e.g. a c* larger than the backbone's channels
            raise ValueError(f"{path} holds a configuration this version cannot build: {e}") from None
        state = payload["state_dict"]
        _check_tensors(path, detector.state_dict(), state)
        _check_statistics(path, state, saved)
        detector.load_state_dict(state)
        detector.theta.weights_source = payload["weights_source"]
        detector.extra = payload["extra"]
        return detector.to(map_location).eval()


# -- checkpoint checks -----------------------------------------------------------
# Each turns one way a checkpoint can be damaged or edited into one line naming the file.

def _read_checkpoint(path: Path, map_location) -> dict:
    """The file's payload, with its marker, version and every field present and of the right type."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist" if not path.exists()
                                else f"checkpoint {path} is not a file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # torch's message (six lines about weights_only=False) would not help here
        raise ValueError(f"{path} is not a ULSAD checkpoint (not a file torch can read)") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a ULSAD checkpoint (no '{FORMAT}' marker)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} was written by ulsad {payload.get('ulsad_version')} in checkpoint "
                         f"format {payload.get('format_version')}; this is ulsad {__version__}, "
                         f"which reads format {FORMAT_VERSION} only")
    missing = [name for name in CHECKPOINT_FIELDS if name not in payload]
    if missing:
        raise ValueError(f"{path} is not a complete ULSAD checkpoint: it has no {', '.join(map(repr, missing))}")
    payload = {"extra": {}, **payload}  # written by every save(), but not needed to predict
    for name, kind in {**CHECKPOINT_FIELDS, "extra": dict}.items():
        if not isinstance(payload[name], kind):
            raise ValueError(f"{path} is damaged: its '{name}' is a {type(payload[name]).__name__}, "
                             f"not a {kind.__name__}")
    return payload


def _saved_config(path: Path, fields: dict) -> Config:
    """The saved Config, validated like any other (an edited value fails here, naming the file)."""
    try:
        return Config.from_dict(fields)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path} holds a configuration this version cannot use: {e}") from None


def _check_same_architecture(path: Path, saved: Config, config: Config) -> None:
    """The caller's `config` must build the networks the file holds (it names the fields that differ)."""
    diff = [f"{k}: checkpoint {getattr(saved, k)!r}, expected {getattr(config, k)!r}"
            for k in ARCHITECTURE_FIELDS if getattr(saved, k) != getattr(config, k)]
    if saved.has_global_branch != config.has_global_branch:
        diff.append("global branch: present in one, absent in the other")
    if diff:
        raise ValueError(f"{path} does not match the requested configuration: " + "; ".join(diff))


def _names(keys, shown: int = 3) -> str:
    """The first few names and how many more: an error stays one readable line."""
    keys = list(keys)
    more = f" (and {len(keys) - shown} more)" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def _check_tensors(path: Path, expected: dict, state: dict) -> None:
    """Every tensor the saved configuration builds, by name and shape, and no other.

    Tensors missing alone mean a damaged file; other tensors, or other shapes, an
    edited configuration (c*, image size, backbone). torch would print every
    mismatch, dozens of lines, without naming the file.
    """
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing and not unexpected:
        raise ValueError(f"{path} is damaged: missing tensors: {_names(missing)}")
    differences = [f"missing tensors: {_names(missing)}"] if missing else []
    if unexpected:
        differences.append(f"tensors the config does not build: {_names(unexpected)}")
    for k in expected.keys() & state.keys():
        if not isinstance(state[k], torch.Tensor):
            raise ValueError(f"{path} is damaged: {k} is a {type(state[k]).__name__}, not a tensor")
    shapes = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if shapes:
        k = shapes[0]
        more = f" (and {len(shapes) - 1} more)" if len(shapes) > 1 else ""
        differences.append(f"{k} has shape {tuple(state[k].shape)}, the config gives {tuple(expected[k].shape)}{more}")
    if differences:
        raise ValueError(f"{path}: architecture differs from its config: " + "; ".join(differences))


def _check_statistics(path: Path, state: dict, config: Config) -> None:
    """Finite weights, μ and σ > 0, and the quantiles Eq. (9) divides by: otherwise every score is NaN.

    q_α^g, q_β^g stay NaN in a detector without a global branch (:meth:`ULSAD.set_quantiles`).
    """
    bad = [k for k, v in state.items() if k != "q" and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"{path} holds non-finite values in {len(bad)} tensor{'s' * (len(bad) > 1)} "
                         f"(e.g. {_names(bad, 2)})")
    if not (state["sigma"] > 0).all():
        raise ValueError(f"{path} is damaged: σ (sigma) has values <= 0, and U = (θ(X) - μ) / σ divides by it")
    q = "[" + ", ".join(f"{v:.4g}" for v in state["q"].tolist()) + "]"
    pairs = state["q"].view(2, 2)[:2 if config.has_global_branch else 1]
    if not torch.isfinite(pairs).all():
        raise ValueError(f"{path} holds non-finite quantiles q = {q}, which Eq. (9) needs "
                         f"(NaN: the detector was saved before calibrate())")
    if not (pairs[:, 1] > pairs[:, 0]).all():
        raise ValueError(f"{path} is damaged: its quantiles q = {q} do not have q_β > q_α, which Eq. (9) needs")
