"""pip keeps the torch a user already has.

In Colab, `pip install ulsad` must not replace Colab's CUDA build of torch with a
CPU wheel of another version, so the package declares ranges, not pins. Here a
fresh venv holds a stand-in "Colab torch" of another release of the range, and
the index a newer one: metadata-only wheels (a real torch is gigabytes). Everything else the
package needs is already installed, as in Colab: the running environment's
site-packages, seen by the fresh venv after its own. Offline; nothing is
written into the repository.
"""
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("venv", reason="the standard library's venv module is unavailable")

ROOT = Path(__file__).resolve().parents[1]
USER_TORCH, USER_TORCHVISION = "2.13.0", "0.28.0"  # not requirements.txt's pins, inside pyproject's ranges
NEWEST = {"torch": "2.14.1", "torchvision": "0.29.1"}  # requirements.txt's pins, the former pyproject's


def wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    """A wheel with metadata and no code: all pip reads to resolve."""
    info = f"{name}-{version}.dist-info"
    files = {f"{info}/METADATA": "".join([f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                                          *(f"Requires-Dist: {r}\n" for r in requires)]),
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as z:
        for path, text in files.items():
            z.writestr(path, text)


@pytest.fixture
def colab(tmp_path):
    """A fresh venv with the user's torch; functions running pip and reading versions in it."""
    index = tmp_path / "index"  # as on PyPI, a newer torch than the user's is there too
    index.mkdir()
    for torch, torchvision in ((USER_TORCH, USER_TORCHVISION), (NEWEST["torch"], NEWEST["torchvision"])):
        wheel(index, "torch", torch)
        wheel(index, "torchvision", torchvision, (f"torch=={torch}",))  # real torchvision pins torch exactly
    # Only that index: no find-links from the environment, no config (/etc/xdg/pip caps torch on some machines).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(index), PIP_CONFIG_FILE=os.devnull,
               PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1")
    venv = tmp_path / "venv"
    # venv builds on the base interpreter even from inside a venv. Without pip of its own (no ensurepip
    # needed): the running environment's pip, seen through the .pth, is the one tested.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, env=env)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

    def run(*args):  # cwd: not the repository, whose ulsad.egg-info would count as installed
        return subprocess.run([python, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    own = run("-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip()
    installed = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    (Path(own) / "installed.pth").write_text("".join(f"{p}\n" for p in installed))  # after its own

    def pip(*args):
        done = run("-m", "pip", *args)
        return done.returncode, done.stdout + done.stderr

    def versions():
        code = "import importlib.metadata as m; print(m.version('torch'), m.version('torchvision'))"
        return tuple(run("-c", code).stdout.split())

    # --ignore-installed: pip must not even try to uninstall the running environment's torch.
    rc, out = pip("install", "--ignore-installed", f"torchvision=={USER_TORCHVISION}")
    assert rc == 0, out
    assert versions() == (USER_TORCH, USER_TORCHVISION)
    return pip, versions


def project_copy(tmp_path, edit=lambda text: text) -> Path:
    """The package's sources, where building writes build/ and egg-info instead of the repository."""
    copy = tmp_path / "ulsad-src"
    shutil.copytree(ROOT / "ulsad", copy / "ulsad", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "README.md", copy)
    (copy / "pyproject.toml").write_text(edit((ROOT / "pyproject.toml").read_text()))
    return copy


def test_pip_keeps_the_torch_a_user_already_has(colab, tmp_path):
    pip, versions = colab
    # Not editable, so that pip resolves the declared dependencies.
    rc, out = pip("install", "--no-build-isolation", str(project_copy(tmp_path)))
    assert rc == 0, out
    assert re.search(r"Successfully installed .*\bulsad-", out), out
    assert versions() == (USER_TORCH, USER_TORCHVISION)
    # pip looked at the user's torch and left it: no line fetching, uninstalling or installing one.
    touched = [line for line in out.splitlines() if re.search(r"\btorch", line) and "already satisfied" not in line]
    assert not touched, out


def test_the_former_pins_would_replace_it(colab, tmp_path):
    """Why the ranges matter: pyproject's former exact pins swap the user's torch for another."""
    pip, versions = colab
    pinned = project_copy(tmp_path, lambda text: re.sub(r'"(torch|torchvision)>=[^"]*"',
                                                        lambda m: f'"{m[1]}=={NEWEST[m[1]]}"', text))
    assert '"torch==2.14.1"' in (pinned / "pyproject.toml").read_text()
    rc, out = pip("install", "--no-build-isolation", str(pinned))
    assert rc == 0, out
    assert f"Uninstalling torch-{USER_TORCH}" in out
    assert versions() == (NEWEST["torch"], NEWEST["torchvision"])
