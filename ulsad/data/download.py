"""Download, verify and safely extract the benchmark datasets.

``download(name, root)`` fetches the dataset's archive into ``root`` as a
``.part`` file (resuming it with an HTTP Range request when a transfer broke,
or starting over when the server cannot resume), checks its SHA-256, extracts
it into a temporary folder inside ``root`` while refusing any member that
would land outside it, and only then moves the categories into place. So
``root`` never holds a half-extracted dataset, and running it again after an
interruption picks up where it stopped. When the categories are already there
it does nothing.
"""
from __future__ import annotations

import hashlib
import http.client
import lzma
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from tqdm.auto import tqdm

from .datasets import DATASETS
from .errors import DataError

LICENCE = ("Creative Commons Attribution-NonCommercial-ShareAlike 4.0 (CC BY-NC-SA 4.0), "
           "https://creativecommons.org/licenses/by-nc-sa/4.0/ : non-commercial use only, "
           "credit the authors, share derivatives under the same licence")
CHUNK = 1 << 20
ATTEMPTS = 3  # transfers per call: the first, then resumptions (or restarts) after a break


@dataclass(frozen=True)
class Source:
    """Where a dataset comes from: archive URL and SHA-256 (None: manual download), and its home page."""

    title: str
    url: str | None
    sha256: str | None
    homepage: str


SOURCES = {
    "mvtec_ad": Source(
        "MVTec AD",
        "https://www.mydrive.ch/shares/150996/b52ecdcbf521176e9db9c731f2304b27/download/420938113-1629960298/"
        "mvtec_anomaly_detection.tar.xz",
        "cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d",
        "https://www.mvtec.com/company/research/datasets/mvtec-ad"),
    "mvtec_loco": Source(
        "MVTec LOCO AD",
        "https://www.mydrive.ch/shares/48237/1b9106ccdfbb09a0c414bd49fe44a14a/download/430647091-1646842701/"
        "mvtec_loco_anomaly_detection.tar.xz",
        "9e7c84dba550fd2e59d8e9e231c929c45ba737b6b6a6d3814100f54d63aae687",
        "https://www.mvtec.com/company/research/datasets/mvtec-loco"),
    "btad": Source(
        "BTAD (beanTech Anomaly Detection)",
        "https://avires.dimi.uniud.it/papers/btad/btad.zip",
        "461c9387e515bfed41ecaae07c50cf6b10def647b36c9e31d239ab2736b10d2a",
        "https://avires.dimi.uniud.it/papers/btad/btad.zip"),
    "visa": Source(
        "VisA (Visual Anomaly)",
        "https://amazon-visual-anomaly.s3.us-west-2.amazonaws.com/VisA_20220922.tar",
        "2eb8690c803ab37de0324772964100169ec8ba1fa3f7e94291c9ca673f40f362",
        "https://github.com/amazon-science/spot-diff"),
    "mpdd": Source(
        "MPDD (Metal Parts Defect Detection)", None, None,
        "https://github.com/stepanje/MPDD"),
}


def download(name: str, root, url: str | None = None, sha256: str | None = None, quiet: bool = False) -> Path:
    """Make dataset ``name`` available under ``root`` (the folder :func:`ulsad.data.load` reads) and return it.

    ``url`` and ``sha256`` override the published archive (tests point them at
    a local server); an overridden ``url`` without ``sha256`` is not verified.
    ``quiet`` hides the progress bars; the licence is always printed.
    """
    if name not in SOURCES:
        hint = " (make it with: python -m ulsad synth)" if name == "synthetic" else ""
        raise DataError(f"no download for dataset {name!r}{hint}; expected one of {', '.join(SOURCES)}")
    root, source = Path(root), SOURCES[name]
    if is_present(name, root):
        if not quiet:
            print(f"{source.title} is already in {root}")
        return root
    if url is None:
        url, sha256 = source.url, sha256 or source.sha256
    if url is None:
        raise DataError(f"{source.title} has no direct download. Get it from {source.homepage} and unpack it "
                        f"so that {root}/<category>/train/good exists for the categories "
                        f"{', '.join(DATASETS[name])} (MVTec AD layout). Licence: {LICENCE}.")
    print(f"{source.title} is licensed under {LICENCE}. Source: {source.homepage}")
    root.mkdir(parents=True, exist_ok=True)
    archive = _fetch(url, root / _archive_name(url), sha256, quiet)
    _extract(archive, root, name, quiet)
    archive.unlink()
    if not is_present(name, root):
        raise DataError(f"{url}: the archive did not contain the expected folders "
                        f"{', '.join(_expected(name))} (now looking at {root})")
    return root


def is_present(name: str, root: Path) -> bool:
    """Whether every category folder (and VisA's split file) exists under ``root``."""
    return all((Path(root) / p).exists() for p in _expected(name))


def _expected(name: str) -> list[str]:
    return DATASETS[name] + (["split_csv/1cls.csv"] if name == "visa" else [])


def _archive_name(url: str) -> str:
    return PurePosixPath(urlparse(url).path).name or "download"


def _fetch(url: str, archive: Path, sha256: str | None, quiet: bool) -> Path:
    """Download ``url`` to ``archive`` through ``archive.part``; verify; return the archive."""
    if archive.exists():  # downloaded before, extraction did not finish
        _verify(archive, sha256, url)
        return archive
    part = archive.with_name(archive.name + ".part")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            if _transfer(url, part, quiet):
                break
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            if attempt == ATTEMPTS:
                raise DataError(f"{url}: download failed after {ATTEMPTS} attempts ({error}); "
                                f"run it again to resume from {part}") from error
    else:
        raise DataError(f"{url}: the transfer kept breaking off; run it again to resume from {part}")
    _verify(part, sha256, url)
    part.rename(archive)
    return archive


def _transfer(url: str, part: Path, quiet: bool) -> bool:
    """Append to ``part`` what the server sends; True when the file is complete."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as error:
        if error.code != 416:  # 416: nothing left past our offset, so the .part file is whole (or bad)
            raise
        return True
    with response:
        resumed = response.status == 206 and response.headers.get("Content-Range", "").startswith(f"bytes {offset}-")
        if not resumed:
            offset = 0  # the server sent the whole file: start over
        remaining = response.headers.get("Content-Length")
        total = offset + int(remaining) if remaining is not None else None
        with open(part, "ab" if resumed else "wb") as f, \
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=part.name, disable=quiet) as bar:
            while chunk := response.read(CHUNK):
                f.write(chunk)
                bar.update(len(chunk))
    # http.client returns a short body without complaint when the connection drops
    return total is None or part.stat().st_size >= total


def _verify(path: Path, sha256: str | None, url: str) -> None:
    if sha256 is None:
        print(f"warning: {path.name} is not verified (no SHA-256 given)")
        return
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != sha256.lower():
        path.unlink()
        raise DataError(f"{url}: SHA-256 of the download is {digest.hexdigest()}, expected {sha256}; "
                        f"the file was deleted, run the download again")


def _extract(archive: Path, root: Path, name: str, quiet: bool) -> None:
    """Extract into a temporary folder inside ``root``, then move its top-level entries into ``root``."""
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, staging, quiet)
        else:
            _extract_tar(archive, staging, quiet)
        content = staging
        entries = list(staging.iterdir())
        # some archives wrap the categories in one folder (BTAD: BTech_Dataset_transformed/)
        if len(entries) == 1 and entries[0].is_dir() and entries[0].name not in DATASETS[name]:
            content = entries[0]
        for entry in content.iterdir():
            target = root / entry.name
            if not target.exists():  # an entry moved by an earlier, interrupted run is complete: keep it
                entry.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_member(name: str, archive: Path, staging: Path) -> Path:
    """Where member ``name`` would be written, or DataError when that is outside ``staging``."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise DataError(f"{archive}: unsafe member {name!r} (absolute path or '..'); refusing to extract")
    target = (staging / Path(*parts)).resolve() if parts else staging.resolve()
    if not _inside(target, staging):
        raise DataError(f"{archive}: member {name!r} would be written outside the target folder; refusing to extract")
    return target


def _inside(path: Path, folder: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(Path(os.path.realpath(folder)))


def _extract_tar(archive: Path, staging: Path, quiet: bool) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tqdm(tar, desc=f"extracting {archive.name}", unit=" files", disable=quiet):
                target = _check_member(member.name, archive, staging)
                if member.isdev():
                    raise DataError(f"{archive}: member {member.name!r} is a device file; refusing to extract")
                if member.issym() or member.islnk():
                    base = target.parent if member.issym() else staging
                    if os.path.isabs(member.linkname) or not _inside(base / member.linkname, staging):
                        raise DataError(f"{archive}: link {member.name!r} -> {member.linkname!r} points outside "
                                        f"the target folder; refusing to extract")
                # our checks come first; the 'data' filter adds tarfile's own (and drops odd permissions)
                tar.extract(member, staging, filter="data")
    except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, zlib.error) as error:
        raise _damaged(archive, error) from error


def _extract_zip(archive: Path, staging: Path, quiet: bool) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in tqdm(zf.infolist(), desc=f"extracting {archive.name}", unit=" files", disable=quiet):
                _check_member(info.filename, archive, staging)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:  # a symlink stored by Unix zip
                    raise DataError(f"{archive}: member {info.filename!r} is a link; refusing to extract")
                zf.extract(info, staging)
    except (zipfile.BadZipFile, OSError, zlib.error) as error:
        raise _damaged(archive, error) from error


def _damaged(archive: Path, error: Exception) -> DataError:
    return DataError(f"{archive}: cannot extract ({error}); expected a complete .tar, .tar.xz or .zip archive")
