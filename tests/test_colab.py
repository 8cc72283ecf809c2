"""A chapter opened alone, as Colab opens it, fetches the whole book in its first cell and runs.

Simulated without a network: a fresh virtual environment that lacks the package and sees the
running environment's packages after its own (as Colab has torch, pandas and the rest installed),
a chapter copied alone into an empty folder, and the repository's address pointed at this clone
(ULSAD_REPOSITORY, which the first cell reads). The clone is of the committed state.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("venv", reason="the standard library's venv module is unavailable")
pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "02_data.ipynb"  # it reads a committed results file and names the script that makes it


@pytest.fixture
def colab(tmp_path):
    """(python of the fresh environment, its environment variables, the folder the chapter is opened in)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    installed = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    (Path(purelib) / "preinstalled.pth").write_text("".join(f"{p}\n" for p in installed))
    # The kernel runs the fresh environment's python.
    kernels = tmp_path / "jupyter" / "kernels" / "python3"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps(
        {"argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
         "display_name": "Colab", "language": "python"}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "ULSAD_", "JUPYTER"))}
    env.update(ULSAD_PROFILE="smoke", ULSAD_REPOSITORY=f"file://{ROOT}", JUPYTER_PATH=str(tmp_path / "jupyter"),
               HOME=str(tmp_path / "home"), PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull,
               PIP_NO_BUILD_ISOLATION="0", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1")
    content = tmp_path / "content"  # Colab's working folder, with the chapter alone in it
    content.mkdir()
    (tmp_path / "home").mkdir()
    shutil.copy(ROOT / "book" / CHAPTER, content)
    return python, env, content


def test_a_chapter_opened_alone_fetches_the_book_and_runs(colab):
    python, env, content = colab
    assert subprocess.run([python, "-c", "import ulsad"], env=env, cwd=content, capture_output=True).returncode != 0
    run = ("import nbformat, nbclient\n"
           f"nb = nbformat.read({CHAPTER!r}, as_version=4)\n"
           "nbclient.NotebookClient(nb, timeout=900, kernel_name='python3').execute()\n"
           f"nbformat.write(nb, {CHAPTER!r})\n")
    done = subprocess.run([python, "-c", run], env=env, cwd=content, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    clone = content / "ulsad-book"
    assert (clone / "results" / "synthetic-demo" / "difficulty" / "difficulty.csv").is_file()
    assert (clone / "benchmarks" / "synth_difficulty.py").is_file()
    # The package is installed in the fresh environment, from the clone, for the next kernels too.
    where = subprocess.run([python, "-c", "import ulsad; print(ulsad.__file__)"], env=env, cwd=content,
                           capture_output=True, text=True)
    assert where.returncode == 0 and Path(where.stdout.strip()).is_relative_to(clone), where.stdout + where.stderr
    # The chapter found the committed difficulty table and drew its figure.
    cells = json.loads((content / CHAPTER).read_text())["cells"]
    difficulty = next(c for c in cells if c["cell_type"] == "code" and "difficulty.csv" in "".join(c["source"]))
    assert [o for o in difficulty["outputs"] if "image/png" in o.get("data", {})], difficulty["outputs"]
    assert "is not here" not in json.dumps(difficulty["outputs"])
