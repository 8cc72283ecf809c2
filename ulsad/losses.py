"""The losses of ULSAD, one function per equation (Sec. 3.2-3.4).

Feature maps are B x c* x h* x w*. The paper writes Z = f(U) for the same map
flattened to c* x (h* w*) columns z_k; here `f` is a reshape, and per-position
distances are taken over the channel axis (dim 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


def f(u: torch.Tensor) -> torch.Tensor:
    """Z = f(U): B x c* x h* x w* -> B x (h* w*) x c*, one row z_k per position."""
    return u.flatten(2).transpose(1, 2)


def f_inv(z: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """U = f⁻¹(Z): B x (h* w*) x c* -> B x c* x h* x w*."""
    return z.transpose(1, 2).reshape(z.shape[0], z.shape[2], h, w)


def l_v(a: torch.Tensor, b: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Eq. (2), left: (1/c*) ||a - b||², the difference in value at each position."""
    return (a - b).pow(2).mean(dim)


def l_v_floor(u: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """The least l_v(a, U) any a >= 0 can reach: (1/c*) ||min(U, 0)||², at each position.

    With the authors' final ReLU, ψ's Ũ' is non-negative while the standardised U is
    negative about half the time, so this part of Eq. (1) and of the map of Eq. (7)
    stays whatever ψ learns.
    """
    return u.clamp(max=0).pow(2).mean(dim)


def l_d(a: torch.Tensor, b: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Eq. (2), right: 1 - cos(a, b), the difference in direction at each position."""
    return 1 - F.cosine_similarity(a, b, dim=dim, eps=1e-8)


def distance(a: torch.Tensor, b: torch.Tensor, lam: float, dim: int = 1) -> torch.Tensor:
    """l_v + λ l_d per position: the summand of Eq. (1), (5), (6) and the maps of Eq. (7), (8)."""
    d = l_v(a, b, dim)
    return d + lam * l_d(a, b, dim) if lam else d


def L_pl(u_tilde1: torch.Tensor, u: torch.Tensor, lambda_l: float) -> torch.Tensor:
    """Eq. (1): the local loss between the FRN's reconstruction Ũ' and the features U."""
    return distance(u_tilde1, u, lambda_l).mean()


def self_attention(z: torch.Tensor) -> torch.Tensor:
    """Eq. (3): A = Z W with W[p, q] = softmax_p(z_p·z_q / √c*); rows of the result are a_q."""
    return cross_attention(z, z)


def cross_attention(z_hat: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Eq. (4): Â = Z Ŵ with Ŵ[p, q] = softmax_p(z_p·ẑ_q / √c*).

    The query at q is the autoencoder's ẑ_q, keys and values are the teacher's z_p.
    Inputs and output are B x (h* w*) x c* (rows, as from :func:`f`). This is
    scaled dot-product attention, which PyTorch fuses (flash attention on GPUs).
    """
    scale = 1 / math.sqrt(z.shape[-1])
    return F.scaled_dot_product_attention(z_hat, z, z, scale=scale)


def pg_residual(u_hat: torch.Tensor, u: torch.Tensor, lambda_a: float) -> torch.Tensor:
    """The summand of Eq. (5) at each position, l(Â, A), B x h* x w*.

    A depends only on the frozen teacher, so it is a constant target.
    """
    z, z_hat = f(u), f(u_hat)
    with torch.no_grad():
        a = self_attention(z)
    h, w = u.shape[-2:]
    return distance(f_inv(cross_attention(z_hat, z), h, w), f_inv(a, h, w), lambda_a)


def L_pg(z_hat: torch.Tensor, z: torch.Tensor, lambda_a: float) -> torch.Tensor:
    """Eq. (5): distance between the cross-attention map Â and the self-attention map A (rows z as from f)."""
    with torch.no_grad():
        a = self_attention(z)
    return distance(cross_attention(z_hat, z), a, lambda_a, dim=-1).mean()


def direct_residual(u_hat: torch.Tensor, u: torch.Tensor, lambda_a: float) -> torch.Tensor:
    """The summand of L_pg^d at each position, l(Û, U), B x h* x w*."""
    return distance(u_hat, u, lambda_a)


def L_pg_direct(u_hat: torch.Tensor, u: torch.Tensor, lambda_a: float) -> torch.Tensor:
    """L_pg^d (Table 3): the direct variant, Û regressed onto U without attention."""
    return direct_residual(u_hat, u, lambda_a).mean()


def L_lg(u_tilde2: torch.Tensor, u_hat: torch.Tensor, lambda_g: float) -> torch.Tensor:
    """Eq. (6): the local-global loss between Ũ'' and Û; gradients reach both ψ and φ."""
    return distance(u_tilde2, u_hat, lambda_g).mean()


@dataclass(frozen=True)
class GlobalTarget:
    """What trains φ (Table 3's choice), as a per-position residual; the loss is its mean.

    Without L_lg, Ũ'' is never trained and Eq. (8) is meaningless: the global map is
    then this residual itself (:func:`ulsad.maps.raw_maps`).
    """

    name: str
    residual: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]  # (Û, U, λ_a) -> B x h* x w*


GLOBAL_TARGETS = {"pg": GlobalTarget("L_pg", pg_residual), "pg_direct": GlobalTarget("L_pg^d", direct_residual),
                  "none": None}


def terms(out, cfg) -> dict[str, torch.Tensor]:
    """The three loss terms of Algorithm 1 and their weighted sum, from one forward pass (`ULSAD.forward`).

    L_pl (Eq. 1) always; L_pg (Eq. 5, or L_pg^d) when φ has a global target; L_lg (Eq. 6)
    when enabled. Missing terms are 0.
    """
    zero = out.u.new_zeros(())
    target = GLOBAL_TARGETS[cfg.global_loss]
    result = {"L_pl": L_pl(out.u_tilde1, out.u, cfg.lambda_l), "L_pg": zero, "L_lg": zero}
    if target is not None:
        result["L_pg"] = target.residual(out.u_hat, out.u, cfg.lambda_attn).mean()
    if cfg.use_lg:
        result["L_lg"] = L_lg(out.u_tilde2, out.u_hat, cfg.lambda_g)
    result["total"] = cfg.w_pl * result["L_pl"] + cfg.w_pg * result["L_pg"] + cfg.w_lg * result["L_lg"]
    return result
