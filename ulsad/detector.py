"""The ULSAD detector: θ, ψ and φ put together (Fig. 2), its maps, and its checkpoint file."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from . import __version__, losses, maps
from .backbone import FeatureExtractor
from .config import Config
from .models import FRN, GlobalAutoencoder

FORMAT = "ulsad-detector"
FORMAT_VERSION = 1
# Fields that change the shape of a tensor in the checkpoint.
ARCHITECTURE_FIELDS = ("image_size", "backbone", "layers", "c_star", "ae_width", "frn_final_relu")


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
        """bfloat16 autocast on CUDA (no loss scaling needed), nothing elsewhere."""
        if self.config.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- Algorithm 1 ----------------------------------------------------------
    @torch.no_grad()
    def raw_features(self, x: torch.Tensor) -> torch.Tensor:
        """θ(X) before normalisation (float32)."""
        with self.autocast():
            return self.theta(x).float()

    def standardize(self, u: torch.Tensor) -> torch.Tensor:
        """Algorithm 1, line 4: U <- (U - μ) / σ."""
        return ((u - self.mu.view(1, -1, 1, 1)) / self.sigma.view(1, -1, 1, 1)).float()

    def losses(self, u: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The three loss terms of Algorithm 1 for normalised features U and images X."""
        cfg = self.config
        with self.autocast():
            u1, u2 = self.frn(u)
            u_hat = self.global_ae(self.theta.normalize(x)) if self.global_ae is not None else None
        u1, u2 = u1.float(), u2.float()
        zero = u.new_zeros(())
        out = {"L_pl": losses.L_pl(u1, u, cfg.lambda_l), "L_pg": zero, "L_lg": zero}
        if u_hat is not None:
            u_hat = u_hat.float()
            if cfg.global_loss == "pg":
                out["L_pg"] = losses.L_pg(losses.f(u_hat), losses.f(u), cfg.lambda_attn)
            elif cfg.global_loss == "pg_direct":
                out["L_pg"] = losses.L_pg_direct(u_hat, u, cfg.lambda_attn)
            if cfg.use_lg:
                out["L_lg"] = losses.L_lg(u2, u_hat, cfg.lambda_g)
        out["total"] = cfg.w_pl * out["L_pl"] + cfg.w_pg * out["L_pg"] + cfg.w_lg * out["L_lg"]
        return out

    # -- Sec. 3.5 -------------------------------------------------------------
    @torch.no_grad()
    def raw_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """M^l (Eq. 7) and M^g (Eq. 8) resized to S x S, before normalisation and blur.

        Without L_lg, Ũ'' is never trained and Eq. (8) is meaningless; the global
        map is then the per-position value of the loss that trained φ: l(Â, A)
        for L_pg and l(Û, U) for L_pg^d. Without any global loss there is no M^g.
        """
        if self.training:
            raise RuntimeError("maps need the detector in eval mode (BatchNorm with its running "
                               "statistics): call detector.eval() first")
        cfg = self.config
        x = self.check_images(x)
        u = self.standardize(self.raw_features(x))
        with self.autocast():
            u1, u2 = self.frn(u)
            u_hat = self.global_ae(self.theta.normalize(x)) if self.global_ae is not None else None
        m_l = maps.local_map(u1.float(), u, cfg.lambda_l)
        if u_hat is None:
            m_g = None
        elif cfg.use_lg:
            m_g = maps.global_map(u2.float(), u_hat.float(), cfg.lambda_g)
        elif cfg.global_loss == "pg_direct":
            m_g = losses.distance(u_hat.float(), u, cfg.lambda_attn)
        else:
            z, z_hat = losses.f(u), losses.f(u_hat.float())
            a, a_hat = losses.self_attention(z), losses.cross_attention(z_hat, z)
            h, w = u.shape[-2:]
            m_g = losses.distance(losses.f_inv(a_hat, h, w), losses.f_inv(a, h, w), cfg.lambda_attn)
        size = cfg.image_size
        return maps.upsample(m_l, size), None if m_g is None else maps.upsample(m_g, size)

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
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
        os.close(fd)
        try:
            torch.save(payload, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return path

    @classmethod
    def load(cls, path: str | Path, config: Config | None = None,
             map_location: str | torch.device = "cpu") -> "ULSAD":
        """Read a detector written by :meth:`save` (with ``weights_only=True``).

        Refuses files of another format version and, when `config` is given, a
        checkpoint whose architecture differs from it.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {path} does not exist")
        try:
            payload = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as e:
            raise ValueError(f"{path} is not a readable ULSAD checkpoint: {e}") from e
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{path} is not a ULSAD checkpoint (no '{FORMAT}' marker)")
        if payload.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path} was written by ulsad {payload.get('ulsad_version')} in checkpoint "
                             f"format {payload.get('format_version')}; this is ulsad {__version__}, "
                             f"which reads format {FORMAT_VERSION} only")
        try:
            saved = Config.from_dict(payload["config"])
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path} holds a configuration this version cannot use: {e}") from e
        if config is not None:
            diff = [f"{k}: checkpoint {getattr(saved, k)!r}, expected {getattr(config, k)!r}"
                    for k in ARCHITECTURE_FIELDS if getattr(saved, k) != getattr(config, k)]
            if saved.has_global_branch != config.has_global_branch:
                diff.append("global branch: present in one, absent in the other")
            if diff:
                raise ValueError(f"{path} does not match the requested configuration: " + "; ".join(diff))
        detector = cls(saved, weights=None)
        detector.load_state_dict(payload["state_dict"])
        detector.theta.weights_source = payload["weights_source"]
        detector.extra = payload.get("extra", {})
        return detector.to(map_location).eval()
