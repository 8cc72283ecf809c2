"""Committed outputs are what the chapters' code, the package and the results files make now."""
import os
import subprocess
from pathlib import Path

import nbformat
import pytest

from ulsad.book import execute
from ulsad.book.session import COMMITTED_PROFILE

CHAPTERS = execute.chapters()


def test_the_book_has_chapters_to_check():
    assert len(CHAPTERS) == 13


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_was_executed_from_its_sources_as_they_are_now(chapter):
    reasons = execute.stale(chapter)
    assert not reasons, (f"{chapter.relative_to(execute.ROOT)} is stale: {'; '.join(reasons)}. Execute it again: "
                         f"python -m ulsad.book.execute {chapter.relative_to(execute.ROOT)}")


def test_a_chapters_record_names_the_package_modules_and_results_files_it_read():
    read = nbformat.read(execute.ROOT / "book" / "09_main_results.ipynb", as_version=4).metadata[execute.KEY]["read"]
    assert "ulsad/reproduce.py" in read
    assert any(name.startswith("results/synthetic-demo/main/") for name in read)
    assert not any(name.startswith(("checkpoints/", "data/")) for name in read)


@pytest.fixture
def chapter(tmp_path, monkeypatch):
    """A one-cell chapter in a repository of its own, executed: it reads a results file."""
    (tmp_path / "book").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "runs.csv").write_text("category,image_auroc\npegboard,0.91\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(open('../results/runs.csv').read())")])
    path = tmp_path / "book" / "chapter.ipynb"
    nbformat.write(nb, path)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)
    monkeypatch.setenv("ULSAD_PROFILE", "smoke")
    nb.cells.append(nbformat.v4.new_code_cell("import os; print(os.environ['ULSAD_PROFILE'])"))
    nbformat.write(nb, path)
    made = execute.execute(path, root=tmp_path)
    assert os.environ["ULSAD_PROFILE"] == "smoke"  # the kernel ran in the committed profile, this process did not
    assert nbformat.read(path, as_version=4).cells[1].outputs[0]["text"] == f"{COMMITTED_PROFILE}\n"
    assert made["read"] == {"results/runs.csv": execute.file_hash(tmp_path / "results" / "runs.csv")}
    assert "pegboard,0.91" in nbformat.read(path, as_version=4).cells[0].outputs[0]["text"]
    assert execute.stale(path, root=tmp_path) == []
    return path


def test_a_chapter_whose_code_was_edited_after_execution_is_stale(chapter):
    nb = nbformat.read(chapter, as_version=4)
    nb.cells[0].source = "print(open('../results/runs.csv').read().upper())"
    nbformat.write(nb, chapter)
    assert execute.stale(chapter, root=chapter.parents[1]) == ["its code cells changed"]


def test_a_chapter_whose_results_file_changed_after_execution_is_stale(chapter):
    (chapter.parents[1] / "results" / "runs.csv").write_text("category,image_auroc\npegboard,0.42\n")
    assert execute.stale(chapter, root=chapter.parents[1]) == ["results/runs.csv, which it read, changed"]


def test_a_chapter_executed_in_another_profile_is_stale(chapter):
    assert execute.stale(chapter, root=chapter.parents[1], profile="smoke") == [
        f"it was executed in the profile {COMMITTED_PROFILE!r}, not 'smoke'"]


def test_a_chapter_without_a_record_is_stale(tmp_path):
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), path)
    assert execute.stale(path, root=tmp_path) == ["it holds no record of its execution"]


def test_the_check_command_names_each_stale_chapter_and_how_to_refresh_it(chapter, capsys, monkeypatch):
    monkeypatch.setattr(execute, "ROOT", chapter.parents[1])
    (chapter.parents[1] / "results" / "runs.csv").unlink()
    assert execute.main(["--check", str(chapter)]) == 1
    assert capsys.readouterr().out == (f"{chapter}: stale (results/runs.csv, which it read, is gone)\n"
                                       f"execute them again: python -m ulsad.book.execute {chapter}\n")
