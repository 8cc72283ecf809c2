"""Anomaly maps and image scores (Sec. 3.5): Eq. (7)-(10), with Eq. (9) corrected."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .losses import GLOBAL_TARGETS, distance


def local_map(u_tilde1: torch.Tensor, u: torch.Tensor, lambda_l: float) -> torch.Tensor:
    """Eq. (7): M^l = l_v(Ũ', U) + λ_l l_d(Ũ', U) per position, B x h* x w*."""
    return distance(u_tilde1, u, lambda_l)


def global_map(u_tilde2: torch.Tensor, u_hat: torch.Tensor, lambda_g: float) -> torch.Tensor:
    """Eq. (8): M^g = l_v(Ũ'', Û) + λ_g l_d(Ũ'', Û) per position, B x h* x w*."""
    return distance(u_tilde2, u_hat, lambda_g)


def raw_maps(out, cfg) -> tuple[torch.Tensor, torch.Tensor | None]:
    """M^l (Eq. 7) and M^g of one forward pass (`ULSAD.forward`), at h* x w*.

    M^g is Eq. (8) when L_lg trained Ũ''; without L_lg it is the residual of the loss
    that trained φ (l(Â, A) for L_pg, l(Û, U) for L_pg^d); without a global branch, None.
    """
    m_l = local_map(out.u_tilde1, out.u, cfg.lambda_l)
    if out.u_hat is None:
        return m_l, None
    if cfg.use_lg:
        return m_l, global_map(out.u_tilde2, out.u_hat, cfg.lambda_g)
    return m_l, GLOBAL_TARGETS[cfg.global_loss].residual(out.u_hat, out.u, cfg.lambda_attn)


def upsample(m: torch.Tensor, size: int) -> torch.Tensor:
    """B x h* x w* -> B x S x S, bilinear."""
    return F.interpolate(m.unsqueeze(1), size=(size, size), mode="bilinear",
                         align_corners=False).squeeze(1)


def quantiles(values: torch.Tensor, alpha: float, beta: float, max_samples: int = 2**24,
              seed: int = 0) -> tuple[float, float]:
    """q_α and q_β of all values (validation map pixels), on a random subset when there are more
    than `max_samples` (torch.quantile's limit)."""
    values = values.flatten().float()
    if values.numel() == 0 or not torch.isfinite(values).all():
        raise ValueError("quantiles need a non-empty set of finite map values")
    if values.numel() > max_samples:
        g = torch.Generator(device="cpu").manual_seed(seed)
        values = values[torch.randperm(values.numel(), generator=g)[:max_samples].to(values.device)]
    q = torch.quantile(values, torch.tensor([alpha, beta], device=values.device))
    return float(q[0]), float(q[1])


def normalize(m: torch.Tensor, q_alpha: float, q_beta: float) -> torch.Tensor:
    """Eq. (9), corrected: t(M) = 0.1 (M - q_α) / (q_β - q_α), so q_α -> 0 and q_β -> 0.1.

    The printed Eq. (9) divides only q_α by (q_β - q_α), a misplaced parenthesis
    (docs/design.md, "Eq. 9, corrected"). The ranking, and so every AUROC, is the
    same for both; the scale is what makes the two branches comparable before
    averaging.
    """
    if not q_beta > q_alpha:
        raise ValueError(f"quantile normalisation needs q_beta > q_alpha, got {q_alpha} and {q_beta}")
    return 0.1 * (m - q_alpha) / (q_beta - q_alpha)


def blur(m: torch.Tensor, sigma: float, kernel: int) -> torch.Tensor:
    """Gaussian blur of B x S x S maps (σ = 4, 33 x 33 in the paper's setting), reflect-padded.

    The 2-D Gaussian is the outer product of two 1-D ones, so it runs as a row and
    a column convolution: 2k instead of k² multiply-adds per pixel, the same
    result as torchvision's gaussian_blur (a test checks it).
    """
    half = (kernel - 1) / 2
    x = torch.linspace(-half, half, kernel, dtype=m.dtype, device=m.device)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    g = g / g.sum()
    pad = kernel // 2
    out = F.pad(m.unsqueeze(1), (pad, pad, pad, pad), mode="reflect")
    out = F.conv2d(out, g.view(1, 1, 1, kernel))
    return F.conv2d(out, g.view(1, 1, kernel, 1)).squeeze(1)


def combine(local: torch.Tensor, global_: torch.Tensor | None) -> torch.Tensor:
    """M = (t^l(M^l) + t^g(M^g)) / 2; the local map alone when there is no global branch."""
    return local if global_ is None else 0.5 * (local + global_)


def final_maps(m_l: torch.Tensor, m_g: torch.Tensor | None, q: tuple[float, ...], sigma: float,
               kernel: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Raw maps (Eq. 7-8) -> normalised (Eq. 9) and blurred local and global maps, and their mean.

    `q` is (q_α^l, q_β^l, q_α^g, q_β^g); the global pair is unused without a global branch.
    """
    local = blur(normalize(m_l, q[0], q[1]), sigma, kernel)
    global_ = None if m_g is None else blur(normalize(m_g, q[2], q[3]), sigma, kernel)
    return local, global_, combine(local, global_)


def image_score(m: torch.Tensor) -> torch.Tensor:
    """Eq. (10): s = max over positions of the combined map, one score per image."""
    return m.flatten(1).amax(1)
