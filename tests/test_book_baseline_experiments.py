"""The book's experiments with the baselines (ulsad.book.baseline_experiments): computed once, then read back."""
import numpy as np
import pandas as pd
import pytest

from ulsad import baselines
from ulsad.book import baseline_experiments as experiments
from ulsad.book.session import setup
from ulsad.reproduce import source_commit

pytest.importorskip("anomalib", reason="the baselines need the optional anomalib package (pip install anomalib)")


@pytest.fixture
def session(tmp_path, monkeypatch):
    monkeypatch.setenv("ULSAD_HOME", str(tmp_path))
    return setup("pegboard", profile="smoke", quiet=True)


def padim_results(session, path):
    return experiments.results(session.config, session.load, path, profile=session.profile,
                               dataset=session.dataset, categories=["pegboard"], names=["padim"])


def test_results_are_computed_once_then_read_back(session, tmp_path, monkeypatch):
    path = tmp_path / "baselines.csv"
    table = padim_results(session, path)
    assert len(table) == 1 and 0 <= table.loc[0, "image_auroc"] <= 1
    assert {"logical.image_auroc", "structural.aupro", "weights", "anomalib"} <= set(table.columns)
    assert (table.loc[0, "profile"], table.loc[0, "data"]) == ("smoke", "synthetic")
    assert table.loc[0, "commit"] == source_commit()

    monkeypatch.setattr(baselines, "build", lambda *a, **k: pytest.fail("recomputed a cached row"))
    again = padim_results(session, path)
    assert again.equals(table)


def test_each_row_is_written_as_soon_as_it_is_made(session, tmp_path, monkeypatch):
    """An interrupted call keeps the rows it finished: the next call computes only the rest."""
    path = tmp_path / "baselines.csv"
    evaluate = baselines.evaluate

    def fail_on_patchcore(model, test, *args, **kwargs):
        if "Patchcore" in type(model).__name__:
            raise KeyboardInterrupt
        return evaluate(model, test, *args, **kwargs)

    monkeypatch.setattr(baselines, "evaluate", fail_on_patchcore)
    with pytest.raises(KeyboardInterrupt):
        experiments.results(session.config, session.load, path, profile=session.profile,
                            dataset=session.dataset, categories=["pegboard"], names=["padim", "patchcore"])
    assert pd.read_csv(path)["method"].tolist() == ["padim"] and not list(tmp_path.glob("*.partial"))


def test_cached_rows_of_another_backbone_are_kept_but_never_reused(session, tmp_path):
    path = tmp_path / "baselines.csv"
    first = padim_results(session, path)
    stale = first.assign(backbone="resnet18", weights="random", image_auroc=0.123)
    pd.concat([stale, first.iloc[:0]]).to_csv(path, index=False)  # only the other backbone's row is cached
    again = padim_results(session, path)
    assert len(again) == 1 and again.loc[0, "backbone"] == "efficientnet_lite0"
    assert again.loc[0, "image_auroc"] != 0.123
    assert len(pd.read_csv(path)) == 2


def test_patchcore_rows_are_reused_only_for_their_coreset_ratio(session, tmp_path):
    path = tmp_path / "baselines.csv"

    def patchcore(ratio):
        return experiments.results(session.config, session.load, path, profile=session.profile,
                                   dataset=session.dataset, categories=["pegboard"], names=["patchcore"],
                                   coreset_ratio=ratio)

    tenth, hundredth = patchcore(0.1), patchcore(0.01)
    assert tenth["coreset_ratio"].tolist() == [0.1] and hundredth["coreset_ratio"].tolist() == [0.01]
    assert tenth.loc[0, "stored_bytes"] > hundredth.loc[0, "stored_bytes"]
    assert len(pd.read_csv(path)) == 2 and patchcore(0.1).equals(tenth)


def test_efficiency_measures_every_method_once_then_reads_back(session, tmp_path, monkeypatch):
    path = tmp_path / "efficiency.csv"

    def measure():
        return experiments.efficiency(session.config, session.load, path, (2,), profile=session.profile,
                                      dataset=session.dataset, category="pegboard", repeats=1, epochs=1,
                                      n_query=2, names=["patchcore", "padim", "fastflow"])

    table = measure()
    assert sorted(table["method"]) == ["fastflow", "padim", "patchcore", "ulsad"] and (table["n_train"] == 2).all()
    trained = table.set_index("method").loc[["ulsad", "fastflow"]]
    assert (trained["epochs_fitted"] == 1).all() and (trained["epoch_s"] > 0).all()
    assert (trained["trained_params"] > 0).all()
    assert (table.loc[table["method"].isin(["patchcore", "padim"]), "trained_params"] == 0).all()
    assert (table["fit_s"] > 0).all() and (table["stored_bytes"] > 0).all()
    assert (table["profile"] == "smoke").all() and (table["data"] == "synthetic").all()
    assert (table["commit"] == source_commit()).all()
    monkeypatch.setattr(experiments, "_measure", lambda *a, **k: pytest.fail("measured a cached row again"))
    assert measure().equals(table)


def test_peak_rss_sees_memory_held_during_the_block():
    import mmap

    with experiments.peak_rss() as rss:
        # 64 MiB of fresh pages, written: the allocator cannot serve them from memory it already holds
        block = mmap.mmap(-1, 64 << 20)
        block.write(b"\1" * (64 << 20))
    assert rss["bytes"] >= 32 << 20
    block.close()


def test_normal_images_render_fresh_normal_images():
    images = experiments.normal_images("pegboard", 3, 32)
    assert images.shape == (3, 3, 32, 32) and 0 <= images.min() and images.max() <= 1
    assert not images[0].equal(images[1])


def test_example_maps_take_the_first_images_of_each_type_and_rank_them_as_the_table_does(session):
    import torch

    from ulsad import train
    from ulsad.book import result_figures

    detector, _ = train.fit(session.load("train"), session.load("validation"), session.config.replace(epochs=1),
                            progress=False)
    examples = experiments.example_maps(session.config, session.load, "pegboard", detector, per_type=2,
                                        names=["padim"])
    assert examples["types"] == ["logical", "logical", "structural", "structural"]
    test = session.load("test")
    first_logical = test.types.index("logical")
    assert torch.equal(examples["images"][0], test[first_logical]["image"])
    assert set(examples["maps"]) == {"ulsad", "padim"}
    assert all(m.shape == (4, 64, 64) for m in examples["maps"].values())
    # the share of normal test images each example outscores, from ULSAD's image score (Eq. 10)
    scores = detector.predict(torch.stack([test[i]["image"] for i in range(len(test))]))["score"].numpy()
    normal = np.array(test.types) == "good"
    assert examples["outscored"]["ulsad"][0] == pytest.approx((scores[normal] < scores[first_logical]).mean())
    assert all(((0 <= v) & (v <= 1)).all() and len(v) == 4 for v in examples["outscored"].values())
    fig = result_figures.plot_method_maps(examples, {"ulsad": "ULSAD", "padim": "PaDiM"}, note="smoke")
    assert len(fig.axes) == 4 * 3 + 2  # per row the image and each method's map; a colour bar per method


def test_example_maps_kept_in_a_cache_are_read_back_while_their_setting_holds(session, tmp_path, monkeypatch):
    from ulsad import train

    detector, _ = train.fit(session.load("train"), session.load("validation"), session.config.replace(epochs=1),
                            progress=False)
    cache = tmp_path / "maps.npz"

    def examples(config):
        return experiments.example_maps(config, session.load, "pegboard", detector, per_type=1, names=["padim"],
                                        cache=cache)

    first = examples(session.config)
    fit = baselines.fit
    monkeypatch.setattr(baselines, "fit", lambda *a, **k: pytest.fail("refitted a baseline whose maps are kept"))
    again = examples(session.config)
    assert np.array_equal(again["maps"]["padim"], first["maps"]["padim"])
    assert np.array_equal(again["outscored"]["padim"], first["outscored"]["padim"])

    refits = []
    monkeypatch.setattr(baselines, "fit", lambda *a, **k: refits.append(1) or fit(*a, **k))
    examples(session.config.replace(seed=session.config.seed + 1))  # another setting: fitted again
    assert refits == [1]
    assert not list(tmp_path.glob("*.partial"))


def test_each_seed_is_its_own_row_and_a_seed_repeats_itself(session, tmp_path):
    path = tmp_path / "baselines.csv"

    def patchcore(seed):
        return experiments.results(session.config.replace(seed=seed), session.load, path, profile=session.profile,
                                   dataset=session.dataset, categories=["pegboard"], names=["patchcore"],
                                   coreset_ratio=0.1)

    first, second = patchcore(0), patchcore(1)
    assert first["seed"].tolist() == [0] and second["seed"].tolist() == [1] and len(pd.read_csv(path)) == 2
    path.unlink()
    assert patchcore(0)["image_auroc"].tolist() == first["image_auroc"].tolist()  # made again, the same


def test_a_trained_baseline_is_scored_along_its_budget_and_its_curve_read_back(session, tmp_path, monkeypatch):
    path = tmp_path / "baselines.csv"

    def fastflow(curves):
        return experiments.results(session.config, session.load, path, profile=session.profile,
                                   dataset=session.dataset, categories=["pegboard"], names=["fastflow"],
                                   epochs={"fastflow": 4}, curves=curves)

    curve = fastflow(curves=True)
    assert curve["epochs"].tolist() == [1, 2, 4] == experiments.curve_epochs(4)
    assert curve["fit_s"].is_monotonic_increasing and (curve["fit_peak_rss_bytes"] >= 0).all()
    monkeypatch.setattr(baselines, "build", lambda *a, **k: pytest.fail("retrained a cached baseline"))
    assert fastflow(curves=False)["epochs"].tolist() == [4]
    assert fastflow(curves=True)[["epochs", "image_auroc"]].equals(curve[["epochs", "image_auroc"]])


def test_another_budget_is_another_row(session, tmp_path):
    path = tmp_path / "baselines.csv"
    for epochs in (1, 2):
        experiments.results(session.config, session.load, path, profile=session.profile, dataset=session.dataset,
                            categories=["pegboard"], names=["fastflow"], epochs={"fastflow": epochs})
    assert pd.read_csv(path)["epochs"].tolist() == [1, 1, 2]  # a 2-epoch run is also scored after 1


@pytest.mark.parametrize("method, combine", [("reverse_distillation", np.add), ("stfpm", np.multiply)])
def test_stage_maps_are_the_parts_the_method_combines_into_its_map(smoke, method, combine):
    from conftest import blobs

    model = baselines.fit(baselines.build(method, smoke, epochs=1), blobs(4))
    maps = experiments.stage_maps(model, blobs(3, seed=2))
    assert list(maps) == ["layer1", "layer2", "layer3", "all"]
    # Reverse Distillation adds its stages' maps (then blurs: a linear step), STFPM multiplies them
    together = combine(combine(maps["layer1"], maps["layer2"]), maps["layer3"])
    assert np.allclose(together, maps["all"], rtol=1e-4, atol=1e-6)
    assert np.allclose(maps["all"], baselines.predict(model, blobs(3, seed=2))[1])


def test_stage_results_score_each_stage_once_then_read_back(session, tmp_path, monkeypatch):
    path = tmp_path / "stages.csv"

    def stages():
        return experiments.stage_results(session.config, session.load, path, profile=session.profile,
                                         dataset=session.dataset, category="pegboard",
                                         method="reverse_distillation", epochs=1)

    rows = stages()
    assert rows["stage"].tolist() == ["layer1", "layer2", "layer3", "all"]
    assert rows["structural.image_auroc"].between(0, 1).all() and (rows["epochs"] == 1).all()
    monkeypatch.setattr(baselines, "build", lambda *a, **k: pytest.fail("retrained a cached stage study"))
    assert stages()["image_auroc"].tolist() == rows["image_auroc"].tolist()
