"""Blur and the final maps of Sec. 3.5 (Eq. 9-10)."""
import pytest
import torch
from torchvision.transforms.functional import gaussian_blur

from ulsad import maps


@pytest.mark.parametrize("sigma, kernel, size", [(4.0, 33, 64), (1.0, 9, 16), (2.0, 17, 40)])
def test_separable_blur_is_torchvisions_gaussian_blur(sigma, kernel, size):
    m = torch.rand(3, size, size)
    expected = gaussian_blur(m.unsqueeze(1), [kernel, kernel], [sigma, sigma]).squeeze(1)
    torch.testing.assert_close(maps.blur(m, sigma, kernel), expected, rtol=1e-5, atol=1e-6)


def test_blur_keeps_a_constant_map_and_its_mass():
    m = torch.full((2, 32, 32), 0.7)
    torch.testing.assert_close(maps.blur(m, 4.0, 33), m)


def test_final_maps_normalise_each_branch_with_its_own_quantiles_then_average():
    m_l, m_g = torch.full((1, 20, 20), 3.0), torch.full((1, 20, 20), 12.0)
    local, global_, combined = maps.final_maps(m_l, m_g, (1.0, 5.0, 10.0, 14.0), sigma=1.0, kernel=9)
    torch.testing.assert_close(local, torch.full_like(m_l, 0.05))   # 0.1 (3 - 1) / (5 - 1)
    torch.testing.assert_close(global_, torch.full_like(m_g, 0.05))  # 0.1 (12 - 10) / (14 - 10)
    torch.testing.assert_close(combined, torch.full_like(m_l, 0.05))
    assert maps.image_score(combined).shape == (1,)


def test_final_maps_without_a_global_branch_are_the_local_map():
    m_l = torch.rand(2, 16, 16)
    local, global_, combined = maps.final_maps(m_l, None, (0.0, 1.0), sigma=1.0, kernel=9)
    assert global_ is None and torch.equal(local, combined)
