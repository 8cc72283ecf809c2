"""The book's figures and the analysis behind them (ulsad.book): they draw what they are given, provenance included."""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from ulsad import metrics
from ulsad.book import analysis, method_figures, result_figures
from ulsad.evaluate import MAPS, TYPES, metric_key


@pytest.fixture(autouse=True)
def off_screen():
    """Draw without a display, and close what was drawn."""
    plt.switch_backend("agg")
    yield
    plt.close("all")


def test_feature_pca_rgb_fits_on_one_set_and_colours_another():
    torch.manual_seed(0)
    train, test = torch.randn(4, 8, 5, 5), torch.randn(2, 8, 5, 5)
    rgb, explained = analysis.feature_pca_rgb(test, fit_on=train)
    assert rgb.shape == (2, 5, 5, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert (np.diff(explained) <= 0).all() and 0 < explained.sum() <= 1


def test_rank_table_shares_the_better_rank_between_ties():
    table = pd.DataFrame({"a": [90.0, 90.0, 80.0], "b": [70.0, 75.0, 60.0]}, index=["x", "y", "z"])
    ranks = analysis.rank_table(table)
    assert ranks["a"].tolist() == [1, 1, 3] and ranks["b"].tolist() == [2, 1, 3]
    assert ranks.loc["y", "mean rank"] == 1


def test_run_tables_average_seeds_per_category_then_add_the_mean():
    keys = [metric_key(m, name) for m in ("image_auroc", "pixel_auroc", "aupro") for name in MAPS]
    keys += [metric_key("image_auroc", name, t) for t in TYPES for name in MAPS]
    runs = pd.DataFrame([{"category": c, "seed": s, **{k: v for k in keys}}
                         for c, s, v in (("a", 0, 0.6), ("a", 1, 0.8), ("b", 0, 0.9))])
    whole, by_type = analysis.run_tables(runs)
    assert whole.shape == (3, 9) and by_type.shape == (3, 6)
    assert whole.loc["a"].tolist() == pytest.approx([70] * 9) and whole.loc["mean"].tolist() == pytest.approx([80] * 9)


def test_claim_effects_label_each_source_as_the_caller_says():
    effects = pd.DataFrame({"claim": ["c", "c"], "pair": ["2 - 1", "4 - 3"], "metric": ["I-AUROC"] * 2,
                            "ours": [1.0, -2.0], "paper": [0.5, 0.7]})
    sources = {"ours": "ours (some data, some weights)", "paper": "paper (Table 3)"}
    fig = result_figures.plot_claim_effects(effects, ["I-AUROC"], sources, note="where it came from")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == list(sources.values()) and fig._suptitle.get_text() == "where it came from"


def test_claim_effects_draw_a_source_s_spread_as_error_bars():
    effects = pd.DataFrame({"claim": ["c"], "pair": ["2 - 1"], "metric": ["I-AUROC"], "ours": [1.0],
                            "ours_std": [0.4], "paper": [0.5]})
    fig = result_figures.plot_claim_effects(effects, ["I-AUROC"], {"ours": "ours", "paper": "paper"},
                                            errors={"ours": "ours_std"})
    from matplotlib.container import ErrorbarContainer

    (error_bars,) = [c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer)]
    (segments,) = error_bars.lines[2]
    assert segments.get_segments()[0][:, 1].tolist() == pytest.approx([0.6, 1.4])


def test_setting_pairs_draw_an_arrow_only_where_a_category_has_both_settings():
    columns = pd.MultiIndex.from_product([["image_auroc"], ["demo", "cpu-full"]])
    table = pd.DataFrame([[60.0, 70.0], [55.0, np.nan]], index=["cable_pair", "pegboard"], columns=columns)
    fig = result_figures.plot_setting_pairs(table, {"image_auroc": "image AUROC"}, ("demo", "cpu-full"),
                                            note="where it came from")
    ax = fig.axes[0]
    (arrow,) = [a for a in ax.texts if a.arrow_patch is not None]
    assert (arrow.xy, arrow.xyann) == ((70.0, 1), (60.0, 1))  # cable_pair, the top row
    assert {t.get_position()[1]: t.get_text() for t in ax.get_yticklabels()} == {1: "cable_pair", 0: "pegboard"}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["demo", "cpu-full"]
    assert [line.get_xdata()[0] for line in ax.get_lines()] == [50]  # chance, drawn for an AUROC


def test_setting_pairs_draw_no_chance_line_for_aupro():
    columns = pd.MultiIndex.from_product([["aupro"], ["demo", "cpu-full"]])
    table = pd.DataFrame([[60.0, 70.0]], index=["cable_pair"], columns=columns)
    fig = result_figures.plot_setting_pairs(table, {"aupro": "AUPRO"}, ("demo", "cpu-full"))
    assert not fig.axes[0].get_lines()


def test_pro_curves_are_the_curves_aupro_integrates():
    rng = np.random.default_rng(0)
    masks = rng.random((2, 8, 8)) < 0.2
    maps = rng.random((2, 8, 8)) + masks
    fig = method_figures.plot_pro_curves({"panel": {"map": (torch.from_numpy(masks), maps)}})
    (line,) = fig.axes[0].get_lines()
    fpr, pro = metrics.pro_curve(masks, maps, 0.3)
    np.testing.assert_allclose(line.get_xdata(), fpr)
    np.testing.assert_allclose(line.get_ydata(), pro)
    assert f"({metrics.aupro(masks, maps, 0.3):.2f})" in line.get_label()


def test_the_diagram_draws_without_data():
    assert method_figures.plot_ulsad_diagram().axes


def test_the_rules_figure_has_a_row_per_category_and_blank_cells_where_a_row_is_shorter():
    image, mask = np.zeros((8, 8, 3)), np.zeros((8, 8), dtype=bool)
    mask[2:4, 2:4] = True
    fig = method_figures.plot_rules({"a": [("normal", image, mask * 0), ("one", image, mask)],
                                     "b": [("normal", image, mask * 0)]}, note="synthetic")
    shown = [ax.get_title() for ax in fig.axes if ax.axison]
    assert shown == ["normal", "one", "normal"]


def test_the_difficulty_figure_draws_one_bar_per_detector_category_and_type():
    table = pd.DataFrame([{"category": c, "type": t, "mean colour": 0.5, "patch memory": 0.9, "whole image": 0.6}
                          for c in ("a", "b") for t in ("logical", "structural", "logical: one rule")])
    fig = method_figures.plot_difficulty(table)
    assert [len(ax.patches) for ax in fig.axes[:2]] == [6, 6]
    assert [p.get_height() for p in fig.axes[0].patches] == [0.5, 0.5, 0.9, 0.9, 0.6, 0.6]


def test_term_curves_draw_each_training_and_the_floors_given():
    histories = {"with": [{"epoch": e, "L_pl": 1.0 + 1 / e} for e in (1, 2, 3)],
                 "without": [{"epoch": e, "L_pl": 1 / e} for e in (1, 2, 3)]}
    fig = method_figures.plot_term_curves(histories, floors={"with": 0.9})
    ax = fig.axes[0]
    assert [list(line.get_ydata()) for line in ax.lines[::2][:1]] == [[2.0, 1.5, 1 + 1 / 3]]
    assert len(ax.lines) == 3  # two curves, one floor
    assert list(ax.lines[1].get_ydata()) == [0.9, 0.9]
    plt.close(fig)


def test_curves_against_references_draw_a_panel_per_category_with_each_reference_as_a_level_line():
    curves = pd.DataFrame({"category": ["bolt_kit"] * 4 + ["brick_wall"] * 2,
                           "run": ["c* = 96", "c* = 96", "c* = 152", "c* = 152", "c* = 96", "c* = 96"],
                           "epoch": [20, 40, 20, 40, 20, 40], "score": [0.7, 0.8, 0.6, 0.9, 0.5, 0.55]})
    references = pd.DataFrame({"category": ["bolt_kit", "bolt_kit", "brick_wall"],
                               "method": ["PatchCore", "PaDiM", "PatchCore"], "value": [84.0, 90.0, 97.5]})
    fig = result_figures.plot_curves_against_references(curves, "score", references, "percent", note="made by x")
    left, right = fig.axes
    assert (left.get_title(), right.get_title()) == ("bolt_kit", "brick_wall")
    assert [list(line.get_ydata()) for line in left.get_lines()[:2]] == [[70.0, 80.0], [60.0, 90.0]]
    assert [line.get_ydata()[0] for line in left.get_lines()[2:]] == [84.0, 90.0]
    assert [t.get_text() for t in right.get_legend().get_texts()] == ["c* = 96", "PatchCore: 97.5"]
