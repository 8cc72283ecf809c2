"""Training's progress bar: text in a notebook, so that an executed or built chapter shows how training ended."""
import warnings

from ulsad import fit
from ulsad.train import epochs_bar

from conftest import blobs


def test_a_fit_in_a_notebook_ends_with_its_final_state_as_text(smoke, capsys):
    """No terminal here (as in a kernel): the bar is text on stdout, its last line the finished training."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(blobs(8), blobs(4, seed=1), smoke.replace(epochs=3), progress=True)
    last = capsys.readouterr().out.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("training: 3/3 epochs [") and "L_pl=" in last and "L_lg=" in last


def test_a_quick_training_writes_its_start_and_its_end_and_nothing_between(capsys):
    bar = epochs_bar(30)
    for epoch in bar:
        bar.set_postfix({"L_pl": f"{1 / epoch:.4f}"}, refresh=False)
    lines = [line for line in capsys.readouterr().out.replace("\r", "\n").splitlines() if line]
    assert [line.split(" [")[0] for line in lines] == ["training: 0/30 epochs", "training: 30/30 epochs"]
    assert lines[-1].endswith("L_pl=0.0333]")


def test_no_progress_writes_nothing(capsys):
    for _ in epochs_bar(3, progress=False):
        pass
    assert capsys.readouterr() == ("", "")
