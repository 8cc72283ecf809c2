import warnings

import pytest
import torch

from ulsad import fit, get_config


@pytest.fixture(autouse=True)
def _quiet_random_backbone_warning():
    # Tests use random backbones on purpose; test_backbone.py checks that the warning is raised.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*RANDOMLY INITIALISED.*")
        yield


@pytest.fixture(scope="session")
def smoke():
    """The `smoke` profile: 64 px, ImageNet EfficientNet-Lite0 (installed with pip, no network), c* = 32."""
    return get_config("smoke")


def blobs(n, size=64, seed=0):
    """Normal images: a bright disc on a dark background, jittered a little."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    images = torch.full((n, 3, size, size), 0.2)
    for i in range(n):
        cy, cx = (size / 2 + torch.randint(-3, 4, (2,), generator=g)).tolist()
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < (size / 5) ** 2
        images[i, :, disc] = 0.8
    return images + 0.02 * torch.randn(images.shape, generator=g)


@pytest.fixture(scope="session")
def trained(smoke):
    """A smoke detector trained for a few epochs on blobs, with its history."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(blobs(16), blobs(6, seed=1), smoke.replace(epochs=4), progress=False)
