"""PatchCore and PaDiM from anomalib on ULSAD's backbone, data and metrics (ulsad.baselines)."""
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
    theta = ULSAD(smoke).theta.body.state_dict()
    model = baselines.build(name, smoke)
    theirs = model.model.feature_extractor.feature_extractor.state_dict()
    assert theirs.keys() == theta.keys()
    assert all(torch.equal(theirs[k], theta[k]) for k in theta)
    assert model.weights_source == "random"


def test_patchcore_keeps_a_coreset_of_its_patches_and_maps_at_the_image_size(smoke):
    model = baselines.fit(baselines.build("patchcore", smoke, coreset_ratio=0.25), blobs(4))
    patches = 4 * (smoke.image_size // 8) ** 2  # layer2's stride is 8
    assert baselines.stored_bytes(model) == int(patches * 0.25) * (128 + 256) * 4
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
