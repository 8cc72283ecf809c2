"""Download, verify and safely extract the benchmark datasets.

``download(name, root)`` first checks its arguments, then fetches the
dataset's archive into ``root`` as a ``.part`` file (resuming it with an HTTP
Range request when a transfer broke, or starting over when the server cannot
resume) and checks its SHA-256; an archive without one is used only when the
caller allows it. Before writing anything it reads every member header,
refusing a member that would land, or a link that could point, outside
``root``, anything but files, folders and links, and an archive that would
expand past a size or ratio cap. It then extracts into a temporary folder
inside ``root``, counting the bytes really written against the same caps, and
only when the expected folders are all there moves them into place. So
``root`` never holds a half-extracted dataset, and running it again after an
interruption picks up where it stopped. An archive refused for what it holds
is kept, with a message that says a rerun will not change that and what will.
Nothing the command did not write is ever deleted. When the categories are
already there it does nothing.
"""
from __future__ import annotations

import hashlib
import http.client
import lzma
import os
import re
import shutil
import stat
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
GIB = 1 << 30
# The largest datasets (MVTec AD, MVTec LOCO, VisA) expand to a few GiB: the cap leaves room for a fuller
# mirror, and still stops a decompression bomb long before it fills a disk.
MAX_SIZE_GIB = 64.0
# The datasets are PNG and JPEG images, which hardly compress further (their archives expand about 1:1);
# zip and xz bombs reach 1000:1 and more.
MAX_RATIO = 200.0
STAGING = ".extract-"  # prefix of the temporary folder inside root that an archive is extracted into


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


def download(name: str, root, url: str | None = None, sha256: str | None = None, quiet: bool = False, *,
             allow_unverified: bool = False, max_size_gib: float = MAX_SIZE_GIB, max_ratio: float = MAX_RATIO) -> Path:
    """Make dataset ``name`` available under ``root`` (the folder :func:`ulsad.data.load` reads) and return it.

    ``url`` and ``sha256`` override the published archive (tests point them at
    a local server); an overridden ``url`` without ``sha256`` is refused before
    anything is downloaded, unless ``allow_unverified`` is true. The archive may
    expand to at most ``max_size_gib`` GiB in all, and to at most ``max_ratio``
    times its own size. ``quiet`` hides the progress bars; the licence is always
    printed.
    """
    if name not in SOURCES:
        hint = " (make it with: python -m ulsad synth)" if name == "synthetic" else ""
        raise DataError(f"no download for dataset {name!r}{hint}; expected one of {', '.join(SOURCES)}")
    root, source = Path(root), SOURCES[name]
    _check_arguments(url, sha256, allow_unverified, max_size_gib, max_ratio)
    if is_present(name, root):
        if not quiet:
            print(f"{source.title} is already in {root}")
        return root
    _check_root(root)
    if url is None:
        url, sha256 = source.url, sha256 or source.sha256
    if url is None:
        raise DataError(f"{source.title} has no direct download. Get it from {source.homepage} and unpack it "
                        f"so that {root}/<category>/train/good exists for the categories "
                        f"{', '.join(DATASETS[name])} (MVTec AD layout). Licence: {LICENCE}.")
    print(f"{source.title} is licensed under {LICENCE}. Source: {source.homepage}")
    root.mkdir(parents=True, exist_ok=True)
    archive = root / _archive_name(url)
    # This command only writes archive.part, renamed once verified: an archive already there is the user's,
    # or kept by an earlier run (which cannot be told apart), so it is never deleted.
    created = not archive.exists()
    if archive.is_dir():
        raise DataError(f"{archive} is a folder, where the download {url} would be saved; expected no folder "
                        f"of that name in the root: move it away")
    _fetch(url, archive, sha256, quiet)
    try:
        _extract(archive, root, name, _Limit(archive, archive.stat().st_size, max_size_gib, max_ratio), quiet)
    except _Rejected as error:
        raise DataError(f"{error}. Running the download again unchanged will not help: the fault is in the archive "
                        f"itself, which is kept at {archive}. Extract it by hand if you trust it, or move it away and "
                        f"download another copy with url and sha256 (--url, --sha256)") from error
    if created:
        archive.unlink()
    else:
        print(f"{archive} was there before this run, so it is left in place; delete it if you no longer need it")
    return root


def is_present(name: str, root: Path) -> bool:
    """Whether every category folder (and VisA's split file) exists under ``root``."""
    return all((Path(root) / p).exists() for p in _expected(name))


def _expected(name: str) -> list[str]:
    return DATASETS[name] + (["split_csv/1cls.csv"] if name == "visa" else [])


def _check_arguments(url: str | None, sha256: str | None, allow_unverified: bool,
                     max_size_gib: float, max_ratio: float) -> None:
    """Refuse arguments that would otherwise fail late (after gigabytes) or with a traceback."""
    if url is not None:
        _archive_name(url)
        if sha256 is None and not allow_unverified:
            raise DataError(f"url {url!r} (--url) comes without a SHA-256, so the download cannot be verified; "
                            f"give it with sha256 (--sha256), or pass allow_unverified=True (--allow-unverified) "
                            f"to extract the archive unchecked")
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise DataError(f"sha256 {sha256!r} (--sha256): expected 64 hexadecimal digits")
    for parameter, value in (("max_size_gib", max_size_gib), ("max_ratio", max_ratio)):
        if not value > 0:  # also refuses NaN
            raise DataError(f"{parameter} {value!r} (--{parameter.replace('_', '-')}): expected a number above 0")


def _check_root(root: Path) -> None:
    """``root`` must be a folder we can write in, or a path where one can be made.

    Checked only when the dataset is missing: a complete dataset in a read-only folder is fine.
    """
    folder = next(p for p in (root, *root.parents) if p.exists())  # the first that exists: it decides
    if not folder.is_dir():
        raise DataError(f"root {str(root)!r} (--root): {folder} is a file; expected a folder, "
                        f"or a path where one can be made")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"root {str(root)!r} (--root): cannot write in {folder}; expected a folder you can write in")


def _archive_name(url: str) -> str:
    """The file name that ends ``url``'s path: the archive is saved under it, so there must be one."""
    try:
        parsed = urlparse(url)
    except ValueError:  # a malformed host, such as an unclosed IPv6 bracket
        parsed = urlparse("")
    name = parsed.path.rpartition("/")[2]
    if parsed.scheme not in ("http", "https") or not parsed.netloc or name in ("", ".", ".."):
        raise DataError(f"url {url!r} (--url): expected an http:// or https:// address ending in the archive's "
                        f"file name, such as https://example.org/data/btad.zip")
    return name


def _fetch(url: str, archive: Path, sha256: str | None, quiet: bool) -> None:
    """Make ``archive`` the verified download of ``url``, through ``archive.part``, unless it is there already."""
    if archive.exists():  # not this run's (see download): used when it verifies, never deleted
        if actual := _mismatch(archive, sha256):
            raise DataError(f"{archive}: already there (not downloaded by this run), and its SHA-256 is {actual}, "
                            f"expected {sha256} for {url}; it is left in place: move it away to download the "
                            f"archive, or give its sha256 (--sha256) if it is a different release you trust")
        return
    part = archive.with_name(archive.name + ".part")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            if _transfer(url, part, quiet):
                break
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            if isinstance(error, urllib.error.HTTPError) and error.code in (404, 410):  # no retry can find it
                raise DataError(f"{url}: not found (HTTP {error.code}); check the address, or give another with "
                                f"url (--url) and its sha256 (--sha256)") from error
            if attempt == ATTEMPTS:
                raise DataError(f"{url}: download failed after {ATTEMPTS} attempts ({error}){_next(part)}") from error
    else:
        raise DataError(f"{url}: the transfer kept breaking off{_next(part)}")
    if actual := _mismatch(part, sha256):
        part.unlink()
        raise DataError(f"{url}: SHA-256 of the download is {actual}, expected {sha256}; the download was deleted. "
                        f"Run it again; if it gets the same SHA-256, the address serves another file: give its "
                        f"sha256 (--sha256) if it is a release you trust, or another url (--url)")
    part.rename(archive)


def _next(part: Path) -> str:
    """What to do after a failed transfer: resume only from a .part that holds data (a kill leaves it empty)."""
    size = part.stat().st_size if part.exists() else 0
    if size:
        return f"; run it again to resume from {part} ({size:,} bytes so far)"
    return "; nothing was downloaded: check the address and the connection, then run it again"


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


def _mismatch(path: Path, sha256: str | None) -> str | None:
    """The SHA-256 of ``path`` when it is not ``sha256``; None when it is, or when there is none to check."""
    if sha256 is None:
        print(f"warning: {path} is not verified (no SHA-256 given; allowed by allow_unverified)")
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return None if digest.hexdigest() == sha256.lower() else digest.hexdigest()


class _Rejected(DataError):
    """The archive can never be extracted as it is (damaged, hostile, too big, the wrong one).

    Its own content is at fault, so running the download again unchanged cannot help: :func:`download`
    says so and keeps it, for extracting by hand or for a rerun with higher caps.
    """


@dataclass(frozen=True)
class _Limit:
    """How far an archive may expand: ``max_size_gib`` GiB in all, and ``max_ratio`` times its own ``size``."""

    archive: Path
    size: int
    max_size_gib: float
    max_ratio: float

    def check(self, total: int, member: str) -> None:
        """Refuse once the members up to ``member`` expand to ``total`` bytes, past either cap."""
        if total > self.max_size_gib * GIB:
            raise _Rejected(f"{self.archive}: expands to more than {total:,} bytes by member {member!r}, past the "
                            f"limit of {self.max_size_gib:g} GiB; if you trust it, run again with a higher "
                            f"max_size_gib (--max-size-gib)")
        if total > self.max_ratio * self.size:
            raise _Rejected(f"{self.archive}: its {self.size:,} bytes expand to more than {total:,} by member "
                            f"{member!r}, over {self.max_ratio:g} times its size (a decompression bomb?); "
                            f"if you trust it, run again with a higher max_ratio (--max-ratio)")


@dataclass(frozen=True)
class _Member:
    """One archive entry, whatever the format: its path, what it is, how many bytes it holds, where it links."""

    name: str
    kind: str  # one of _KINDS, else what it is, for the message that refuses it
    size: int
    link: str
    info: tarfile.TarInfo | zipfile.ZipInfo  # to read its content


_KINDS = ("file", "folder", "symlink", "hardlink")  # what datasets need; anything else is refused
_TAR_KINDS = {tarfile.DIRTYPE: "folder", tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink",
              tarfile.CHRTYPE: "device file", tarfile.BLKTYPE: "device file", tarfile.FIFOTYPE: "FIFO"}
# zip has no link field: a Unix zip stores a link's target as its content, which headers cannot vouch for
_ZIP_KINDS = {0: "file", stat.S_IFREG: "file", stat.S_IFDIR: "folder", stat.S_IFLNK: "symbolic link in a zip",
              stat.S_IFCHR: "device file", stat.S_IFBLK: "device file", stat.S_IFIFO: "FIFO"}


def _tar_member(info: tarfile.TarInfo) -> _Member:
    kind = "file" if info.isreg() else _TAR_KINDS.get(info.type, f"special member (tar type {info.type!r})")
    return _Member(info.name, kind, info.size if info.isreg() else 0, info.linkname, info)


def _zip_member(info: zipfile.ZipInfo) -> _Member:
    mode = stat.S_IFMT(info.external_attr >> 16)  # 0 when written on Windows
    kind = "folder" if info.is_dir() else _ZIP_KINDS.get(mode, f"special member (mode {mode:o})")
    return _Member(info.filename, kind, info.file_size, "", info)


def _extract(archive: Path, root: Path, name: str, limit: _Limit, quiet: bool) -> None:
    """Extract into a temporary folder inside ``root``; move its entries into ``root`` once all are there.

    The folder is on the same file system as ``root``, so each move is a rename: instant, and never half done.
    """
    for stale in root.glob(f"{STAGING}*"):  # left by a run that was killed; a run that fails removes its own
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING, dir=root))
    try:
        _unpack(archive, staging, limit, quiet)
        content = _content(staging, name)
        missing = [p for p in _expected(name) if not (content / p).exists() and not (root / p).exists()]
        if missing:
            raise _Rejected(f"{archive}: the archive did not contain the expected folders {', '.join(missing)}")
        for entry in content.iterdir():
            target = root / entry.name
            if not target.exists():  # an entry moved by an earlier, interrupted run is complete: keep it
                entry.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _content(staging: Path, name: str) -> Path:
    """The folder that holds the categories: some archives wrap them in one (BTAD: BTech_Dataset_transformed/)."""
    entries = list(staging.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and entries[0].name not in DATASETS[name]:
        return entries[0]
    return staging


def _unpack(archive: Path, staging: Path, limit: _Limit, quiet: bool) -> None:
    """Check every member of ``archive``, then write them all into ``staging``.

    A failure is the archive's fault (:class:`_Rejected`) unless the file system
    refused a write: then the next run can succeed once that is fixed.
    """
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                _write(_scan(map(_zip_member, zf.infolist()), limit, quiet), zf.open, staging, limit, quiet)
        else:
            with tarfile.open(archive, "r:*") as tar:
                _write(_scan(map(_tar_member, tar), limit, quiet), tar.extractfile, staging, limit, quiet)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, lzma.LZMAError, zlib.error, NotImplementedError) as error:
        raise _damaged(archive, error) from error
    except OSError as error:
        if error.errno is None:  # raised by a decompressor (gzip's BadGzipFile), not by the file system
            raise _damaged(archive, error) from error
        raise DataError(f"{archive}: extracting it failed ({error}); the archive is kept, "
                        f"run the download again once that is fixed") from error


def _damaged(archive: Path, error: Exception) -> _Rejected:
    reason = " ".join(str(error).split())  # tarfile lists what it tried on several lines; the message is one
    return _Rejected(f"{archive}: cannot extract ({reason}); expected a complete .tar, .tar.xz or .zip archive "
                     f"(does the address serve a web page instead of the file?)")


def _scan(members, limit: _Limit, quiet: bool) -> list[_Member]:
    """Check every member from its header before anything is written; stop at the first bad one.

    So a bomb is refused before it costs any disk, and a hostile member at the end of
    an archive leaves no trace of the members before it.
    """
    checked: list[_Member] = []
    seen: dict[tuple[str, ...], str] = {}  # the kind of every path so far, with the folders made on the way
    total = 0
    for member in tqdm(members, desc=f"checking {limit.archive.name}", unit=" files", disable=quiet):
        _check_member(member, limit.archive, seen)
        parts = _parts(member.name)
        for i in range(len(parts)):
            seen.setdefault(parts[:i], "folder")
        seen[parts] = member.kind
        total += member.size
        limit.check(total, member.name)
        checked.append(member)
    return checked


def _check_member(member: _Member, archive: Path, seen: dict[tuple[str, ...], str]) -> None:
    """Refuse a member that would be written, or a link that could point, anywhere but down into the target,
    or that clashes with an earlier one (``seen``) so that writing it would fail.

    Checking each link against the folder as it stands is not enough: ``x -> a/b/../..``
    passes while ``a`` and ``b`` do not exist, and leads elsewhere once later members make
    them links. Names and link targets that are never absolute and never hold ``..`` only
    ever lead down, through whatever links the archive makes in whatever order.
    """
    parts = _parts(member.name)
    if parts is None or not (parts or member.kind == "folder"):
        raise _Rejected(f"{archive}: unsafe member {member.name!r} (absolute path or '..'); refusing to extract")
    if member.kind not in _KINDS:
        raise _Rejected(f"{archive}: member {member.name!r} is a {member.kind}; refusing to extract")
    if member.kind in ("symlink", "hardlink") and not _parts(member.link):
        raise _Rejected(f"{archive}: link {member.name!r} -> {member.link!r} could point outside the target folder "
                        f"(a link may only point down: no absolute path, no '..'); refusing to extract")
    for i in range(1, len(parts)):
        if seen.get(parts[:i]) in ("file", "hardlink"):
            raise _Rejected(f"{archive}: member {member.name!r} lies inside {'/'.join(parts[:i])!r}, an earlier "
                            f"{seen[parts[:i]]}; refusing to extract")
    earlier = seen.get(parts)
    # a folder listed twice is harmless, and a file listed twice replaced by its last copy, as tar does
    if earlier and not (earlier == member.kind and earlier in ("folder", "file")):
        raise _Rejected(f"{archive}: member {member.name!r} (a {member.kind}) has the same name as an earlier "
                        f"{earlier}; refusing to extract")
    if member.kind == "hardlink" and seen.get(_parts(member.link)) != "file":
        raise _Rejected(f"{archive}: link {member.name!r} -> {member.link!r} does not name a file earlier in the "
                        f"archive; refusing to extract")


def _parts(path: str) -> tuple[str, ...] | None:
    """The names along an archive path, or None when it could lead anywhere but down.

    Backslashes count as separators, as in zips written on Windows, and a first name
    with a colon as a drive (``C:``).
    """
    unified = path.replace("\\", "/")
    parts = PurePosixPath(unified).parts
    if unified.startswith("/") or "\0" in unified or ".." in parts or (parts and ":" in parts[0]):
        return None
    return parts


def _write(members: list[_Member], read, staging: Path, limit: _Limit, quiet: bool) -> None:
    """Write checked ``members`` into ``staging``, ``read`` giving a file's content from its ``info``.

    The bytes really written count against ``limit`` as they are written, so a header
    that understates a member's size cannot get past the caps.
    """
    written = 0
    for member in tqdm(members, desc=f"extracting {limit.archive.name}", unit=" files", disable=quiet):
        target = staging.joinpath(*_parts(member.name))
        if member.kind == "folder":
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if member.kind == "symlink":
            target.symlink_to("/".join(_parts(member.link)))
        elif member.kind == "hardlink":
            os.link(staging.joinpath(*_parts(member.link)), target)
        else:
            with read(member.info) as source, open(target, "wb") as f:
                while chunk := source.read(CHUNK):
                    written += len(chunk)
                    limit.check(written, member.name)
                    f.write(chunk)
