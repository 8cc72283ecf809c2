"""The two trainable networks of ULSAD: the FRN ψ (Table 4) and the global autoencoder φ (Table 5).

Both follow the authors' implementation as docs/design.md records it ("Feature
reconstruction network", "Global autoencoder"). Widths are
multiples of c* (ψ) or of `width` (φ), so that small profiles shrink them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _block(conv: nn.Module, out_ch: int, relu: bool = True, **bn) -> nn.Sequential:
    layers = [conv, nn.BatchNorm2d(out_ch, **bn)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class FRN(nn.Module):
    """Feature Reconstruction Network ψ (Sec. 3.2, Fig. 3, Table 4).

    U (c* x h* x w*) -> Ũ (2c* x h* x w*): the first c* channels are Ũ', the local
    reconstruction of U; the last c* are Ũ'', matched to the global branch by L_lg.
    The bottleneck is at h*/4: a 32 x 32 feature map is squeezed to 8 x 8.
    """

    def __init__(self, c_star: int, final_relu: bool = True):
        super().__init__()
        c = c_star
        self.encoder = nn.Sequential(  # ψ_e
            _block(nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), 2 * c),
            _block(nn.Conv2d(2 * c, 4 * c, 3, stride=2, padding=1), 4 * c),
            _block(nn.Conv2d(4 * c, 4 * c, 3, stride=1, padding=1), 4 * c, relu=False),
        )
        self.decoder = nn.Sequential(  # ψ_d
            _block(nn.ConvTranspose2d(4 * c, 2 * c, 4, stride=2, padding=1), 2 * c),
            _block(nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), c),
            _block(nn.ConvTranspose2d(c, 2 * c, 5, stride=1, padding=2), 2 * c, relu=final_relu),
        )
        gain = nn.init.calculate_gain("leaky_relu")
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight, gain=gain)

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (Ũ', Ũ'')."""
        return self.decoder(self.encoder(u)).chunk(2, dim=1)


class GlobalAutoencoder(nn.Module):
    """Global autoencoder φ (Sec. 3.3, Fig. 4, Table 5): image (3 x S x S) -> Û (c* x S/8 x S/8).

    The encoder squeezes the whole image into one 1 x 1 code, so Û can only hold
    what is common to all normal images: their layout, not their local detail.
    The paper's final kernel is 8 for S = 256; we use S/32 so that any S that is a
    multiple of 32 also ends at 1 x 1.
    """

    def __init__(self, c_star: int, image_size: int, width: int = 64):
        super().__init__()
        s, w, half = image_size, width, width // 2
        bn = dict(affine=False, eps=1e-4)
        self.encoder = nn.Sequential(  # φ_e
            _block(nn.Conv2d(3, half, 4, stride=2, padding=1), half, **bn),
            _block(nn.Conv2d(half, half, 4, stride=2, padding=1), half, **bn),
            _block(nn.Conv2d(half, w, 4, stride=2, padding=1), w, **bn),
            _block(nn.Conv2d(w, w, 4, stride=2, padding=1), w, **bn),
            _block(nn.Conv2d(w, w, 4, stride=2, padding=1), w, **bn),
            _block(nn.Conv2d(w, w, s // 32), w, **bn),
        )
        # Each k4/p2 conv adds one pixel to the size it is resized to: 3->4, 8->9, 15->16, 31->32, 63->64.
        self.sizes = [max(1, s // 64 - 1), s // 32, s // 16 - 1, s // 8 - 1, s // 4 - 1]
        self.upsample = nn.ModuleList(
            _block(nn.Conv2d(w, w, 4, stride=1, padding=2), w, **bn) for _ in self.sizes)
        self.feature_size = s // 8
        self.head = nn.Sequential(
            _block(nn.Conv2d(w, w, 3, padding=1), w, **bn),
            nn.Conv2d(w, c_star, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: the ImageNet-normalised image. Returns Û."""
        z = self.encoder(x)
        for size, block in zip(self.sizes, self.upsample):
            z = block(F.interpolate(z, size=size, mode="bilinear", align_corners=False))
        z = F.interpolate(z, size=self.feature_size, mode="bilinear", align_corners=False)
        return self.head(z)
