"""The book's figures and the analysis behind them (ulsad.book): they draw what they are given, provenance included."""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from ulsad import metrics
from ulsad.book import _figure_tools as figure_tools
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
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
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
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["demo", "cpu-full"]
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


# -- one colour per method ----------------------------------------------------------------------------------

def bar_colours(ax) -> dict:
    """Each legend label of an axes' bars with the bars' face colour, as hex."""
    from matplotlib.colors import to_hex

    return {c.get_label(): to_hex(c.patches[0].get_facecolor()) for c in ax.containers if c.patches}


def test_a_method_has_one_colour_in_every_panel():
    left = pd.DataFrame({"image AUROC": [80.0, 90.0]}, index=["ULSAD", "PatchCore-10%"])
    right = pd.DataFrame({"image AUROC": [95.0, 70.0, 60.0]}, index=["PatchCore-10%", "PaDiM", "ULSAD"])
    fig = result_figures.plot_grouped_bars({"logical": left, "structural": right})
    first, second = (bar_colours(ax) for ax in fig.axes[:2])
    assert first["ULSAD"] == second["ULSAD"] == figure_tools.method_colour("ULSAD")
    assert first["PatchCore-10%"] == second["PatchCore-10%"] == figure_tools.method_colour("PatchCore")
    assert len(set(second.values())) == 3


def test_every_variant_and_backbone_of_the_package_has_a_colour_of_its_own_name():
    from ulsad.backbone import BACKBONES
    from ulsad.config import VARIANTS

    assert all(figure_tools.method_colour(name) for name in [*VARIANTS, *BACKBONES])
    assert figure_tools.method_colour("full") == figure_tools.method_colour("ULSAD")
    assert figure_tools.method_colour("ULSAD (authors_relu)") == figure_tools.method_colour("authors_relu")
    assert figure_tools.method_colour("efficientnet_lite0 (ImageNet)") == figure_tools.method_colour(
        "backbone-efficientnet_lite0")
    lites = {figure_tools.method_colour(f"efficientnet_lite{i}") for i in range(3)}
    assert len(lites) == 3


def test_two_names_of_one_method_in_a_figure_never_share_a_colour():
    colours = figure_tools.colours_for(["ULSAD, c* = 96", "ULSAD, c* = 152", "PaDiM", "training images"])
    assert colours["ULSAD, c* = 96"] == figure_tools.method_colour("ULSAD")
    assert len(set(colours.values())) == 4


def test_the_runs_of_a_learning_curve_figure_take_their_methods_colours():
    from matplotlib.colors import to_hex

    curves = pd.DataFrame({"run": ["STFPM", "STFPM", "CFLOW", "CFLOW"], "epoch": [1, 2, 1, 2],
                           "image_auroc": [0.5, 0.6, 0.55, 0.7]})
    fig = method_figures.plot_learning_curves(curves, {"image_auroc": "image AUROC (%)"})
    assert {line.get_label(): to_hex(line.get_color()) for line in fig.axes[0].get_lines()} == {
        "STFPM": figure_tools.method_colour("STFPM"), "CFLOW": figure_tools.method_colour("CFLOW")}


# -- bars: from 0, readable, with their spread --------------------------------------------------------------

def test_grouped_bars_start_at_0_and_mark_chance_only_over_auroc_groups():
    table = pd.DataFrame({"image AUROC": [80.0], "AUPRO": [60.0]}, index=["ULSAD"])
    fig = result_figures.plot_grouped_bars({"panel": table}, ylim=(30, 100))
    ax = fig.axes[0]
    assert ax.get_ylim() == (0, 100)
    (chance,) = [c for c in ax.collections if c.get_label().startswith("50: chance")]
    (segment,) = chance.get_segments()
    assert segment[:, 1].tolist() == [50, 50] and segment[:, 0].max() < 0.5  # over the AUROC group only


@pytest.mark.parametrize("names", [["image AUROC", "pixel AUROC", "AUPRO (FPR ≤ 0.3)"],
                                   ["drink_bottle", "lunch_box", "pin_tray", "bolt_kit", "wire_splice", "brick_wall",
                                    "cable_pair"]], ids=["three metrics", "seven categories"])
def test_grouped_bar_labels_never_overlap(names):
    table = pd.DataFrame([np.full(len(names), 80.0)], columns=names, index=["ULSAD"])
    fig = result_figures.plot_grouped_bars({"left": table, "right": table})
    ax = fig.axes[0]
    fig.canvas.draw()
    labels = ax.get_xticklabels()
    rotation = labels[0].get_rotation()
    if rotation == 0:
        boxes = [label.get_window_extent() for label in labels]
        assert not any(a.overlaps(b) for a, b in zip(boxes, boxes[1:]))
    else:  # turned labels are parallel lines: apart by the ticks' spacing times the sine of the angle
        spacing = np.diff([ax.transData.transform((tick, 0))[0] for tick in ax.get_xticks()]).min()
        assert spacing * np.sin(np.radians(rotation)) > 1.2 * labels[0].get_fontsize() * fig.dpi / 72
        assert all("\n" not in label.get_text() for label in labels)


def test_seed_averaged_bars_show_the_spread_over_seeds():
    from matplotlib.container import ErrorbarContainer

    means = pd.DataFrame({"image AUROC": [80.0, 90.0]}, index=["ULSAD", "PaDiM"])
    stds = pd.DataFrame({"image AUROC": [2.0, 1.0]}, index=["ULSAD", "PaDiM"])
    fig = result_figures.plot_grouped_bars({"panel": means}, errors={"panel": stds})
    spans = [sorted(c.lines[2][0].get_segments()[0][:, 1]) for c in fig.axes[0].containers
             if isinstance(c, ErrorbarContainer)]
    assert spans == [pytest.approx([78, 82]), pytest.approx([89, 91])]
    assert "std over seeds" in fig.axes[0].get_ylabel()


# -- heatmaps: a scale per metric, a colour bar on each ------------------------------------------------------

def colour_bar_labels(fig, panels: int) -> list[str]:
    """The labels of a figure's colour bars: the axes seaborn adds after the panels."""
    return [ax.get_ylabel() for ax in fig.axes[panels:]]


def test_every_heatmap_has_a_colour_bar_labelled_with_its_metric():
    table = pd.DataFrame({"a": [60.0, 90.0], "b": [40.0, 70.0]}, index=["ULSAD", "PaDiM"])
    fig = result_figures.plot_metric_heatmaps({"image AUROC": table, "AUPRO (FPR ≤ 0.3)": table}, vmin=20)
    auroc, aupro = colour_bar_labels(fig, 2)
    assert "AUROC" in auroc and "50 = chance" in auroc
    assert "AUPRO" in aupro and "chance" not in aupro


def test_auroc_is_white_at_chance_and_aupro_runs_from_0_to_100():
    table = pd.DataFrame({"a": [50.0, 90.0]}, index=["x", "y"])
    fig = result_figures.plot_metric_heatmaps({"pixel AUROC": table, "AUPRO": table})
    auroc, aupro = (ax.collections[0] for ax in fig.axes[:2])
    assert np.allclose(auroc.cmap(auroc.norm(50))[:3], 0.97, atol=0.03)  # white: chance
    assert (aupro.norm.vmin, aupro.norm.vmax) == (0, 100)


def test_a_panel_with_auroc_and_aupro_columns_colours_each_on_its_own_scale():
    table = pd.DataFrame({"I-AUROC": [85.0], "P-AUPRO": [70.0]}, index=["10: vd_pg_lg"])
    fig = result_figures.plot_metric_heatmaps({"ours": table})
    assert len(fig.axes[0].collections) == 2
    assert sorted(colour_bar_labels(fig, 1)) == ["AUPRO (%)", "AUROC (%): white = 50 = chance"]


def test_run_tables_colour_aupro_columns_on_the_aupro_scale():
    columns = pd.MultiIndex.from_tuples([("image AUROC", "combined"), ("AUPRO", "combined")])
    whole = pd.DataFrame([[80.0, 60.0], [80.0, 60.0]], index=["a", "mean"], columns=columns)
    by_type = pd.DataFrame([[70.0], [70.0]], index=["a", "mean"],
                           columns=pd.MultiIndex.from_tuples([("logical image AUROC", "combined")]))
    fig = result_figures.plot_run_tables(whole, by_type)
    assert sorted(colour_bar_labels(fig, 2)) == ["AUPRO (%)", "AUROC (%): white = 50 = chance",
                                                 "AUROC (%): white = 50 = chance"]


def test_heatmaps_too_wide_for_a_page_stand_one_under_the_other():
    narrow = pd.DataFrame([[60.0, 70.0]], index=["ULSAD"], columns=["a", "b"])
    fig = result_figures.plot_metric_heatmaps({"image AUROC": narrow, "pixel AUROC": narrow})
    heatmaps = fig.axes[::2]  # each followed by its colour bar
    assert heatmaps[0].get_position().y0 == pytest.approx(heatmaps[1].get_position().y0)  # one row
    wide = pd.DataFrame(np.full((9, 6), 70.0), index=[f"method {i}" for i in range(9)],
                        columns=[f"category {j}" for j in range(6)])
    fig = result_figures.plot_metric_heatmaps({"image AUROC": wide, "pixel AUROC": wide, "AUPRO": wide})
    width, _ = fig.get_size_inches()
    assert width <= figure_tools.PAGE_WIDTH_IN
    tops = [ax.get_position().y0 for ax in fig.axes if ax.get_title()]
    assert len(tops) == 3 and tops == sorted(tops, reverse=True)  # one column, in the panels' order


def test_the_paper_s_tables_and_our_runs_fit_a_page_and_stack_when_they_would_not():
    """Tables 9-11 side by side and chapter 9's run tables would be too wide for a page, which would shrink
    their numbers: they stand one under the other, at most a page wide. Table 2's ten columns and its ranks
    stand one under the other too, each panel as wide as its columns need (17 inches side by side)."""
    methods = [f"method {i}" for i in range(9)]
    table2 = pd.DataFrame(np.linspace(60, 99, 90).reshape(9, 10), index=methods,
                          columns=pd.MultiIndex.from_product([list("ABCDE"), ["P-AUROC", "P-AUPRO"]]))
    per_category = pd.DataFrame(np.full((9, 6), 80.0), index=methods, columns=[f"c{j}" for j in range(6)])
    columns = pd.MultiIndex.from_product([["image AUROC", "pixel AUROC", "AUPRO"], ["combined", "local", "global"]])
    whole = pd.DataFrame(np.full((7, 9), 80.0), index=[f"cat {i}" for i in range(6)] + ["mean"], columns=columns)
    by_type = whole.iloc[:, :6].set_axis(pd.MultiIndex.from_product(
        [["logical image AUROC", "structural image AUROC"], ["combined", "local", "global"]]), axis=1)
    for fig, page in ((result_figures.plot_paper_table(table2, "Table 2"), 11),
                      (result_figures.plot_table_panels({"Table 9": per_category, "Table 10": per_category,
                                                         "Table 11": per_category}), figure_tools.PAGE_WIDTH_IN),
                      (result_figures.plot_run_tables(whole, by_type), figure_tools.PAGE_WIDTH_IN)):
        assert fig.get_size_inches()[0] <= page
        heatmaps = [ax for ax in fig.axes if ax.get_title()]
        tops = [ax.get_position().y0 for ax in heatmaps]
        assert tops == sorted(tops, reverse=True) and len(set(tops)) == len(tops)  # one under the other
        assert all(ax.get_yticklabels() for ax in heatmaps)  # each names its rows
        plt.close(fig)
    small = pd.DataFrame({"a": [90.0, 80.0]}, index=["ULSAD", "PaDiM"])
    fig = result_figures.plot_paper_table(small, "Table 1")
    left, right = [ax for ax in fig.axes if ax.get_title()]
    assert left.get_position().y0 == pytest.approx(right.get_position().y0)  # a small table keeps its ranks beside it
    assert not [t.get_text() for t in right.get_yticklabels() if t.get_text()]


def test_the_alpha_beta_heatmaps_and_the_paper_s_ranks_have_colour_bars():
    grid = pd.DataFrame([{"alpha": a, "beta": b, "image_auroc": 0.8 + a / 10}
                         for a in (0.9, 0.95) for b in (0.99, 0.995)])
    fig = result_figures.plot_alpha_beta(grid, {"image_auroc": "image AUROC"}, paper_point=(0.9, 0.995))
    assert colour_bar_labels(fig, 1) == ["image AUROC (%): white = the paper's α, β"]
    table = pd.DataFrame({"a": [90.0, 80.0]}, index=["ULSAD", "PaDiM"])
    fig = result_figures.plot_paper_table(table, "Table 1")
    assert colour_bar_labels(fig, 2) == ["points below the column's best", "rank (1 = best)"]


def test_each_method_s_maps_have_a_colour_bar_of_their_own():
    rng = np.random.default_rng(0)
    examples = {"images": [rng.random((8, 8, 3))], "masks": [np.zeros((8, 8))], "types": ["logical"],
                "maps": {"full": [rng.random((8, 8))], "padim": [10 * rng.random((8, 8))]},
                "outscored": {"full": [0.95], "padim": [0.5]}}
    fig = result_figures.plot_method_maps(examples, {"full": "ULSAD", "padim": "PaDiM"})
    assert [ax.get_xlabel() for ax in fig.axes[3:]] == ["ULSAD score", "PaDiM score"]


# -- legends beside the data, never over it ------------------------------------------------------------------

def legend_clear_of_the_panels(fig) -> bool:
    fig.canvas.draw()
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    panels = [ax.get_window_extent() for ax in fig.axes]
    return bool(legends) and not any(legend.get_window_extent().overlaps(p) for legend in legends for p in panels)


@pytest.mark.parametrize("draw", [
    lambda: result_figures.plot_claim_effects(
        pd.DataFrame({"claim": ["c"], "pair": ["2 - 1"], "metric": ["I-AUROC"], "ours": [1.0], "paper": [0.5]}),
        ["I-AUROC"], {"ours": "ours", "paper": "paper"}),
    lambda: result_figures.plot_lambda_curves({"ours": pd.DataFrame({"I-AUROC": [80.0, 85.0]}, index=[0.0, 0.5])}),
    lambda: result_figures.plot_grouped_bars({"p": pd.DataFrame({"image AUROC": [80.0]}, index=["ULSAD"])}),
    lambda: result_figures.plot_curves_against_references(
        pd.DataFrame({"category": ["a", "a"], "run": ["ULSAD"] * 2, "epoch": [1, 2], "s": [0.5, 0.6]}), "s",
        pd.DataFrame({"category": ["a"], "method": ["PaDiM"], "value": [70.0]}), "percent"),
    lambda: method_figures.plot_learning_curves(
        pd.DataFrame({"run": ["STFPM", "STFPM"], "epoch": [1, 2], "image_auroc": [0.5, 0.6]}),
        {"image_auroc": "image AUROC"}),
], ids=["claim effects", "lambda curves", "grouped bars", "curves against references", "learning curves"])
def test_legends_lie_outside_every_panel(draw):
    assert legend_clear_of_the_panels(draw())


# -- chapter 8's scores, chapter 4's attention --------------------------------------------------------------

def test_score_histograms_give_each_kind_its_own_panel_over_the_normal_images_outline():
    scores = np.r_[np.linspace(0, 0.1, 10), np.linspace(0.1, 0.4, 10), np.linspace(0.05, 0.3, 10)]
    types = ["good"] * 10 + ["logical"] * 10 + ["structural"] * 10
    fig = method_figures.plot_score_histograms(scores, types)
    assert [ax.get_ylabel().split("\n")[0] for ax in fig.axes] == ["normal", "logical", "structural"]
    from matplotlib.patches import Polygon

    outlines = [[p for p in ax.patches if isinstance(p, Polygon)] for ax in fig.axes]
    assert [len(o) for o in outlines] == [0, 1, 1]  # the normal images' outline behind each anomaly type


def test_attention_maps_show_a_hundredth_of_the_query_s_weight_and_have_a_colour_bar():
    weights = np.full((1, 1, 4, 4), 0.5 / 15)
    weights[0, 0, 0, 0] = 0.5  # the query holds half its weight, as in chapter 4
    fig = method_figures.plot_attention_maps(np.zeros((1, 16, 16, 3)), weights, [(0, 0)])
    shown = fig.axes[1].get_images()[-1]
    assert shown.norm(0.01) > 0.2  # a hundredth of the largest weight is well above black
    assert "weight" in fig.axes[-1].get_ylabel() and "^0.3" in fig.axes[-1].get_ylabel()
    fig = method_figures.plot_attention_maps(np.zeros((1, 16, 16, 3)), weights, [(0, 0)], log=True)
    assert "log" in fig.axes[-1].get_ylabel()


# -- banners say what the figure covers ----------------------------------------------------------------------

def test_the_banner_of_runs_over_several_categories_and_backbones_names_them_all():
    rows = pd.DataFrame({"data": "SYNTHETIC", "backbone": ["efficientnet_lite0", "efficientnet_lite1"] * 2,
                         "weights": "random", "profile": "demo", "image_size": 128.0, "epochs": 30,
                         "category": ["pegboard", "pegboard", "cable_pair", "cable_pair"], "seed": 0})
    assert analysis.runs_note(rows) == ("ours: SYNTHETIC data, backbones efficientnet_lite0, efficientnet_lite1 "
                                        "with RANDOM weights, profile demo, image size 128, epochs 30; "
                                        "categories pegboard, cable_pair, seed 0")


def test_a_provenance_note_longer_than_the_figure_is_wide_is_wrapped_inside_it():
    """A note wider than its figure would widen the saved image, and the page would shrink the whole figure."""
    note = ("ours: SYNTHETIC data, backbones efficientnet_lite0, efficientnet_lite1 with ImageNet weights, profile "
            "demo, image size 128, epochs 30; categories drink_bottle, lunch_box, pin_tray, bolt_kit, wire_splice, "
            "brick_wall, seeds 0, 1, 2\nsecond line")
    fig, _ = plt.subplots(figsize=(4, 3))
    figure_tools.add_note(fig, note)
    fig.canvas.draw()
    title = fig._suptitle
    assert title.get_window_extent().width <= fig.bbox.width
    assert title.get_text().split() == note.split()  # every word kept, the lines of the note kept apart
    assert title.get_text().endswith("\nsecond line")
    plt.close(fig)


def test_a_point_mass_is_clipped_and_labelled_so_the_other_densities_stay_readable():
    rng = np.random.default_rng(0)
    u = rng.standard_normal(20_000)
    fig = method_figures.plot_value_histograms({"U": u, "ReLU(U)": np.maximum(u, 0)})
    left, right = fig.axes
    assert left.get_ylim()[1] < 1.0  # a standard normal peaks at 0.40; ReLU's zeros would reach about 20
    labels = [t.get_text() for t in right.texts]
    assert any("50% of the entries" in t and "exactly 0" in t for t in labels), labels
    assert not left.texts  # no point mass in U
    assert [ax.get_title() for ax in fig.axes] == ["U\n50% negative", "ReLU(U)\n0% negative"]
    plt.close(fig)
