"""Learning curves: a fit evaluated every few epochs, one row per evaluation (chapter 7)."""
from ulsad import data, get_config
from ulsad.book.learning_curves import METRICS, learning_curve


def test_a_learning_curve_has_a_row_per_evaluation_with_metrics_and_losses(tmp_path):
    root = data.synth.generate(tmp_path, ["pegboard"], image_size=64, n_train=6, n_val=4, n_test=8)
    load = lambda split: data.load("synthetic", root, "pegboard", split, image_size=64)  # noqa: E731
    cfg = get_config("smoke", epochs=3)
    rows = learning_curve(cfg, load("train"), load("validation"), load("test"), every=2, label={"run": "a"})
    assert [r["epoch"] for r in rows] == [2, 3]  # every 2 epochs, and the last
    for row in rows:
        assert row["run"] == "a" and row["wall_s"] > 0 and row["total"] > 0
        assert all(0 <= row[k] <= 1 for k in ("image_auroc", "pixel_auroc", "aupro")), row
        assert set(METRICS) <= set(row)
