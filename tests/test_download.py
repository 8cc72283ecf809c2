"""Downloads against an HTTP server on 127.0.0.1 that serves archives built here."""
from __future__ import annotations

import builtins
import errno
import hashlib
import importlib
import io
import socket
import stat
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ulsad.cli import main
from ulsad.data import DATASETS, DataError, download, load
from ulsad.data.download import ATTEMPTS, CHUNK, GIB


class ArchiveServer(ThreadingHTTPServer):
    """Serves ``files`` (URL path -> bytes). It can break off the first ``cuts`` responses after
    ``cut_keep`` of their body (half), and can ignore Range requests; it records the Range header
    of every request."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ArchiveHandler)
        self.files: dict[str, bytes] = {}
        self.cuts = 0
        self.cut_keep = 0.5
        self.honour_range = True
        self.ranges: list[str | None] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class ArchiveHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        server: ArchiveServer = self.server
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        requested = self.headers.get("Range")
        server.ranges.append(requested)
        start = int(requested.split("=")[1].rstrip("-")) if requested and server.honour_range else 0
        if start >= len(body) and start:
            self.send_error(416)
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if server.cuts:
            server.cuts -= 1
            self.wfile.write(body[start:start + int((len(body) - start) * server.cut_keep)])  # then it closes
        else:
            self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    server = ArchiveServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, "png")
    return buffer.getvalue()


def btad_zip() -> bytes:
    """BTAD as published: its categories wrapped in one folder, BTech_Dataset_transformed/."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for category in DATASETS["btad"]:
            for i in range(3):
                zf.writestr(f"BTech_Dataset_transformed/{category}/train/ok/{i:04d}.png", png_bytes())
            zf.writestr(f"BTech_Dataset_transformed/{category}/test/ok/0000.png", png_bytes())
    return buffer.getvalue()


def tar_bytes(members: list[tarfile.TarInfo | tuple[str, bytes]], compression: str = "xz") -> bytes:
    """A tar archive of files (name, content) and ready-made members (links, devices)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}" if compression else "w") as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return buffer.getvalue()


def loco_files() -> list[tuple[str, bytes]]:
    return [(f"{category}/train/good/000.png", png_bytes()) for category in DATASETS["mvtec_loco"]]


def link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def serve(server: ArchiveServer, path: str, body: bytes) -> str:
    server.files[path] = body
    return server.url(path)


def names(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def leftovers(root: Path) -> list[str]:
    """Anything half-done: .part files or extraction folders."""
    return [p.name for p in root.iterdir() if p.name.endswith(".part") or p.name.startswith(".extract-")]


# --- a good archive ----------------------------------------------------------

def test_zip_is_verified_extracted_unwrapped_and_loadable_and_the_licence_is_printed(server, tmp_path, capsys):
    body = btad_zip()
    root = download("btad", tmp_path / "btad", url=serve(server, "/btad.zip", body), sha256=sha256(body), quiet=True)
    assert root == tmp_path / "btad"
    assert "CC BY-NC-SA 4.0" in capsys.readouterr().out
    assert sorted(p.name for p in root.iterdir()) == ["01", "02", "03"]  # archive and wrapper folder gone
    assert len(load("btad", root, "02", "train", val_fraction=0.4)) == 2


def test_tar_xz_is_extracted_and_a_second_call_downloads_nothing(server, tmp_path, capsys):
    body = tar_bytes(loco_files())
    url = serve(server, "/loco.tar.xz", body)
    download("mvtec_loco", tmp_path, url=url, sha256=sha256(body), quiet=True)
    assert all((tmp_path / c / "train/good/000.png").is_file() for c in DATASETS["mvtec_loco"])
    requests = len(server.ranges)
    capsys.readouterr()
    download("mvtec_loco", tmp_path, url=url, sha256=sha256(body))
    assert len(server.ranges) == requests
    assert "already" in capsys.readouterr().out


def test_plain_tar_is_extracted(server, tmp_path):
    body = tar_bytes(loco_files(), compression="")
    download("mvtec_loco", tmp_path, url=serve(server, "/loco.tar", body), sha256=sha256(body), quiet=True)
    assert all((tmp_path / c).is_dir() for c in DATASETS["mvtec_loco"])


def test_links_that_stay_inside_the_root_are_extracted(server, tmp_path):
    body = tar_bytes(loco_files() + [link("pushpins/alias.png", "train/good/000.png")])
    download("mvtec_loco", tmp_path, url=serve(server, "/loco.tar.xz", body), sha256=sha256(body), quiet=True)
    assert (tmp_path / "pushpins/alias.png").read_bytes() == png_bytes()


def test_archive_without_the_expected_categories_is_an_error(server, tmp_path):
    body = tar_bytes([("readme.txt", b"not a dataset")])
    with pytest.raises(DataError, match="did not contain the expected folders breakfast_box.*will not help.*kept at"):
        download("mvtec_loco", tmp_path, url=serve(server, "/other.tar.xz", body), sha256=sha256(body), quiet=True)
    assert names(tmp_path) == ["other.tar.xz"]  # readme.txt was never moved in


# --- a wrong checksum --------------------------------------------------------

def test_wrong_checksum_deletes_the_download_and_extracts_nothing(server, tmp_path):
    body = btad_zip()
    with pytest.raises(DataError, match="SHA-256 of the download is .* expected 0+"):
        download("btad", tmp_path, url=serve(server, "/btad.zip", body), sha256="0" * 64, quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_a_file_the_user_put_there_is_never_deleted(server, tmp_path):
    """The command only ever writes btad.zip.part and renames it when verified: a btad.zip already there is not this run's."""
    mine = tmp_path / "btad.zip"
    mine.write_bytes(b"the user's own btad.zip, another release")
    body = btad_zip()
    with pytest.raises(DataError) as refused:
        download("btad", tmp_path, url=serve(server, "/btad.zip", body), sha256=sha256(body), quiet=True)
    message = str(refused.value)
    assert message.startswith(f"{mine}: ") and sha256(mine.read_bytes()) in message and sha256(body) in message
    assert "left in place" in message and "move it away" in message and "(--sha256)" in message
    assert mine.read_bytes() == b"the user's own btad.zip, another release" and server.ranges == []
    assert names(tmp_path) == ["btad.zip"]


def test_a_folder_named_like_the_archive_is_named_and_left_alone(server, tmp_path):
    (tmp_path / "btad.zip").mkdir()
    body = btad_zip()
    with pytest.raises(DataError, match=f"^{tmp_path / 'btad.zip'} is a folder, where the download"):
        download("btad", tmp_path, url=serve(server, "/btad.zip", body), sha256=sha256(body), quiet=True)
    assert names(tmp_path) == ["btad.zip"] and server.ranges == []


def test_an_archive_the_user_put_there_is_extracted_without_downloading_and_left_in_place(server, tmp_path, capsys):
    body = btad_zip()
    (tmp_path / "btad.zip").write_bytes(body)
    download("btad", tmp_path, url=serve(server, "/btad.zip", body), sha256=sha256(body), quiet=True)
    assert server.ranges == [] and names(tmp_path) == ["01", "02", "03", "btad.zip"]
    assert f"{tmp_path / 'btad.zip'} was there before this run" in capsys.readouterr().out


# --- members that try to escape the root -------------------------------------

@pytest.mark.parametrize("member", [
    ("../escaped.txt", b"x"),
    ("/tmp/ulsad-absolute-escape.txt", b"x"),
    link("pushpins/evil", "../../escaped.txt"),
    link("pushpins/evil", "/etc/passwd"),
    link("pushpins/evil", "../../escaped.txt", kind=tarfile.LNKTYPE),
    link("pushpins/device", "", kind=tarfile.CHRTYPE),
    link("pushpins/disk", "", kind=tarfile.BLKTYPE),
    link("pushpins/pipe", "", kind=tarfile.FIFOTYPE),
    link("pushpins/evil", "train/../../../escaped.txt"),
    link("pushpins/evil", "pushpins/missing.png", kind=tarfile.LNKTYPE),
], ids=["dotdot", "absolute", "symlink-out", "symlink-absolute", "hardlink-out", "device", "block-device", "fifo",
        "symlink-dotdot-in-the-middle", "hardlink-to-nothing-before-it"])
def test_tar_member_escaping_the_root_is_refused_and_nothing_is_extracted(server, tmp_path, member):
    root = tmp_path / "root"
    body = tar_bytes(loco_files() + [member])
    with pytest.raises(DataError, match="refusing to extract. Running the download again unchanged will not help"):
        download("mvtec_loco", root, url=serve(server, "/loco.tar.xz", body), sha256=sha256(body), quiet=True)
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/ulsad-absolute-escape.txt").exists()
    assert not any((root / c).exists() for c in DATASETS["mvtec_loco"]) and leftovers(root) == []


def test_zip_member_escaping_the_root_is_refused(server, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("01/train/ok/0000.png", png_bytes())
        zf.writestr("../escaped.txt", b"x")
    body = buffer.getvalue()
    with pytest.raises(DataError, match="unsafe member '../escaped.txt'"):
        download("btad", tmp_path / "root", url=serve(server, "/btad.zip", body), sha256=sha256(body), quiet=True)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "root/01").exists()


@pytest.mark.parametrize("ups", [6, 7])
def test_link_through_links_made_later_cannot_reach_outside(server, tmp_path, ups):
    """x -> a/b/c/d/e/f/../../../../../../ stays inside the folder while a .. f do not exist, so a check
    against the folder as it stands lets it through; once the members after it make a .. f links to '.',
    it leads six folders up, to /."""
    root = tmp_path / "root"
    chain = [link("x", "a/b/c/d/e/f/" + "../" * ups)] + [link(name, ".") for name in "abcdef"]
    body = tar_bytes(loco_files() + chain)
    with pytest.raises(DataError, match=r"loco.tar.xz: link 'x' -> .* could point outside the target folder"):
        download("mvtec_loco", root, url=serve(server, "/loco.tar.xz", body), sha256=sha256(body), quiet=True)
    assert names(root) == ["loco.tar.xz"]


@pytest.mark.parametrize("members, clash", [
    ([link("a", "", kind=tarfile.DIRTYPE), link("a", "pushpins")],
     "member 'a' (a symlink) has the same name as an earlier folder"),
    ([("a/readme.txt", b"x"), link("a", "pushpins")], "member 'a' (a symlink) has the same name as an earlier folder"),
    ([("a", b"x"), ("a/readme.txt", b"y")], "member 'a/readme.txt' lies inside 'a', an earlier file"),
], ids=["folder-then-symlink", "folder-made-by-a-file-then-symlink", "file-then-a-member-inside-it"])
def test_members_that_clash_are_the_archives_fault_and_a_rerun_is_not_promised_to_help(server, tmp_path, members,
                                                                                         clash):
    root, body = tmp_path / "root", tar_bytes(loco_files() + members)
    archive, url = root / "loco.tar.xz", serve(server, "/loco.tar.xz", body)
    for run in (1, 2):  # the same refusal each time; the kept archive is not downloaded again
        with pytest.raises(DataError) as refused:
            download("mvtec_loco", root, url=url, sha256=sha256(body), quiet=True)
        message = str(refused.value)
        assert message.startswith(f"{archive}: {clash}; refusing to extract")
        assert "will not help" in message and "once that is fixed" not in message
        assert f"kept at {archive}" in message and "by hand" in message and "(--url, --sha256)" in message
        assert len(server.ranges) == 1 and names(root) == ["loco.tar.xz"]


def test_hardlink_to_an_earlier_file_is_extracted(server, tmp_path):
    body = tar_bytes(loco_files() + [link("pushpins/copy.png", "pushpins/train/good/000.png", kind=tarfile.LNKTYPE)])
    download("mvtec_loco", tmp_path, url=serve(server, "/loco.tar.xz", body), sha256=sha256(body), quiet=True)
    assert (tmp_path / "pushpins/copy.png").read_bytes() == png_bytes()


@pytest.mark.parametrize("mode, kind", [(stat.S_IFLNK | 0o777, "symbolic link"), (stat.S_IFIFO | 0o644, "FIFO"),
                                        (stat.S_IFCHR | 0o644, "device file")])
def test_zip_links_and_special_files_are_refused(server, tmp_path, mode, kind):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("01/train/ok/0000.png", png_bytes())
        info = zipfile.ZipInfo("01/evil")
        info.external_attr = mode << 16
        zf.writestr(info, "/etc/passwd")
    body = buffer.getvalue()
    with pytest.raises(DataError, match=f"btad.zip: member '01/evil' is a {kind}.*; refusing to extract"):
        download("btad", tmp_path, url=serve(server, "/btad.zip", body), sha256=sha256(body), quiet=True)
    assert names(tmp_path) == ["btad.zip"]


# --- archives that expand too far ---------------------------------------------

def test_archive_expanding_past_the_ratio_cap_is_refused_from_its_headers_and_can_be_allowed(server, tmp_path):
    """A few kilobytes that expand to 32 MiB (about 1000:1) are refused before anything is written, with the
    option that allows them; raising it lets the same archive, kept, through without downloading it again."""
    body = tar_bytes([("zeros.bin", bytes(32 << 20))] + loco_files(), compression="gz")
    url = serve(server, "/bomb.tar.gz", body)
    with pytest.raises(DataError, match=r"bomb.tar.gz: its [\d,]+ bytes expand to more than 33,554,432 by member "
                                        r"'zeros.bin', over 200 times.*max_ratio \(--max-ratio\)\. "
                                        r"Running the download again unchanged will not help.*kept at"):
        download("mvtec_loco", tmp_path, url=url, sha256=sha256(body), quiet=True)
    assert names(tmp_path) == ["bomb.tar.gz"]
    download("mvtec_loco", tmp_path, url=url, sha256=sha256(body), quiet=True, max_ratio=10_000)
    assert (tmp_path / "zeros.bin").stat().st_size == 32 << 20 and len(server.ranges) == 1


def test_archive_expanding_past_the_size_cap_is_refused_and_says_how_to_allow_it(server, tmp_path):
    body = tar_bytes(loco_files())
    with pytest.raises(DataError, match=r"expands to more than [\d,]+ bytes by member .*past the limit of 1e-07 GiB; "
                                        r"if you trust it, run again with a higher max_size_gib \(--max-size-gib\)"):
        download("mvtec_loco", tmp_path, url=serve(server, "/loco.tar.xz", body), sha256=sha256(body), quiet=True,
                 max_size_gib=1e-7)
    assert names(tmp_path) == ["loco.tar.xz"]


class Endless(io.RawIOBase):
    """A member's content that goes on far past what its header said, counting what was read of it."""

    def __init__(self):
        self.read_so_far = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        buffer[:] = bytes(len(buffer))
        self.read_so_far += len(buffer)
        return len(buffer)


def test_member_larger_than_its_header_says_is_stopped_while_it_is_written(server, tmp_path, monkeypatch):
    """zipfile itself stops at the header's size; a reader that did not is simulated, and the caps still hold."""
    body, streams = btad_zip(), []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info, *a, **k: streams.append(Endless()) or streams[-1])
    with pytest.raises(DataError, match=r"expands to more than [\d,]+ bytes by member 'BTech_Dataset_transformed/01/"):
        download("btad", tmp_path, url=serve(server, "/btad.zip", body), sha256=sha256(body), quiet=True,
                 max_size_gib=4 * CHUNK / GIB, max_ratio=1e9)
    assert len(streams) == 1 and streams[0].read_so_far <= 5 * CHUNK
    assert names(tmp_path) == ["btad.zip"]


# --- archives that cannot be verified or used --------------------------------

def test_url_without_a_checksum_is_refused_before_downloading_and_says_how_to_allow_it(server, tmp_path):
    url = serve(server, "/btad.zip", btad_zip())
    with pytest.raises(DataError, match=r"without a SHA-256.*--sha256.*allow_unverified=True \(--allow-unverified\)"):
        download("btad", tmp_path, url=url, quiet=True)
    assert server.ranges == [] and list(tmp_path.iterdir()) == []


def test_unverified_archive_is_extracted_when_allowed_with_a_warning(server, tmp_path, capsys):
    download("btad", tmp_path, url=serve(server, "/btad.zip", btad_zip()), quiet=True, allow_unverified=True)
    assert "not verified" in capsys.readouterr().out and (tmp_path / "01").is_dir()


def test_web_page_served_instead_of_the_archive_is_kept_and_a_rerun_is_not_promised_to_help(server, tmp_path):
    url = serve(server, "/btad.zip", b"<!DOCTYPE html><html><body>Please log in</body></html>")
    for run in (1, 2):
        with pytest.raises(DataError, match=r"btad.zip: cannot extract .*web page.*will not help.*kept at .*btad.zip\. "
                                            r"Extract it by hand.*move it away"):
            download("btad", tmp_path, url=url, quiet=True, allow_unverified=True)
        assert len(server.ranges) == 1 and names(tmp_path) == ["btad.zip"]


def test_file_system_error_while_extracting_keeps_the_verified_archive_for_the_next_run(server, tmp_path,
                                                                                         monkeypatch):
    def full_disk(path, mode="r", *args, **kwargs):
        if mode == "wb" and ".extract-" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return builtins.open(path, mode, *args, **kwargs)

    body = btad_zip()
    url = serve(server, "/btad.zip", body)
    # the module by its name: ulsad.data.download is the function
    monkeypatch.setattr(importlib.import_module("ulsad.data.download"), "open", full_disk, raising=False)
    with pytest.raises(DataError, match="No space left on device.*the archive is kept"):
        download("btad", tmp_path, url=url, sha256=sha256(body), quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["btad.zip"]
    monkeypatch.undo()
    download("btad", tmp_path, url=url, sha256=sha256(body), quiet=True)
    # the next run cannot tell its predecessor's archive from one the user put there, so it leaves it
    assert len(server.ranges) == 1 and names(tmp_path) == ["01", "02", "03", "btad.zip"]


def test_folder_left_by_a_killed_extraction_is_cleared_by_the_next_run(server, tmp_path):
    (tmp_path / ".extract-killed/01").mkdir(parents=True)
    body = btad_zip()
    download("btad", tmp_path, url=serve(server, "/btad.zip", body), sha256=sha256(body), quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01", "02", "03"]


# --- arguments checked before any download -----------------------------------

@pytest.mark.parametrize("url", ["/data/..", "/data/", "/data/.", "ftp://127.0.0.1/btad.zip", "http://[::1/btad.zip"])
def test_url_without_a_file_name_or_not_http_is_refused_before_downloading(server, tmp_path, url):
    url = server.url(url) if url.startswith("/") else url
    with pytest.raises(DataError, match=r"url '.*' \(--url\): expected an http:// or https:// address ending in "
                                        r"the archive's file name"):
        download("btad", tmp_path, url=url, sha256="0" * 64, quiet=True)
    assert server.ranges == []


def test_root_that_is_a_file_is_refused_before_downloading(server, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    for root in (tmp_path / "file", tmp_path / "file/btad"):
        with pytest.raises(DataError, match=r"root '.*' \(--root\): .*file is a file; expected a folder"):
            download("btad", root, url=serve(server, "/btad.zip", btad_zip()), sha256="0" * 64, quiet=True)
    assert server.ranges == []


@pytest.mark.parametrize("arguments, message", [
    ({"sha256": "abc"}, r"sha256 'abc' \(--sha256\): expected 64 hexadecimal digits"),
    ({"max_size_gib": 0}, r"max_size_gib 0 \(--max-size-gib\): expected a number above 0"),
    ({"max_ratio": float("nan")}, r"max_ratio nan \(--max-ratio\): expected a number above 0"),
])
def test_malformed_checksum_or_caps_are_refused_before_downloading(server, tmp_path, arguments, message):
    with pytest.raises(DataError, match=message):
        download("btad", tmp_path, url=serve(server, "/btad.zip", btad_zip()), **{"sha256": "0" * 64, **arguments})
    assert server.ranges == []


@pytest.mark.parametrize("option, value, parameter", [("--url", "/data/..", "url"), ("--root", "file", "root")])
def test_command_line_reports_a_bad_url_or_root_in_one_line_with_status_2(server, tmp_path, capsys,
                                                                          option, value, parameter):
    (tmp_path / "file").write_text("not a folder")
    arguments = {"--url": serve(server, "/btad.zip", b""), "--root": str(tmp_path / "root"), "--sha256": "0" * 64}
    arguments[option] = server.url(value) if option == "--url" else str(tmp_path / value)
    assert main(["download", "btad", *[x for pair in arguments.items() for x in pair]]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {parameter} ") and f"({option})" in error and error.count("\n") == 1
    assert server.ranges == []


# --- transfers cut short ------------------------------------------------------

def test_transfer_cut_short_is_resumed_with_a_range_request(server, tmp_path):
    body = btad_zip()
    server.cuts = 1
    download("btad", tmp_path, url=serve(server, "/btad.zip", body), sha256=sha256(body), quiet=True)
    assert server.ranges == [None, f"bytes={len(body) // 2}-"]
    assert (tmp_path / "03/test/ok/0000.png").read_bytes() == png_bytes() and leftovers(tmp_path) == []


def test_transfer_cut_short_restarts_when_the_server_cannot_resume(server, tmp_path):
    body = btad_zip()
    server.cuts, server.honour_range = 1, False
    download("btad", tmp_path, url=serve(server, "/btad.zip", body), sha256=sha256(body), quiet=True)
    assert len(server.ranges) == 2 and (tmp_path / "01").is_dir()


def test_part_file_left_by_an_interrupted_run_is_resumed(server, tmp_path):
    body = btad_zip()
    (tmp_path / "btad.zip.part").write_bytes(body[:100])
    download("btad", tmp_path, url=serve(server, "/btad.zip", body), sha256=sha256(body), quiet=True)
    assert server.ranges == ["bytes=100-"] and (tmp_path / "02").is_dir()


def test_complete_part_file_is_verified_without_downloading_again(server, tmp_path):
    body = btad_zip()
    (tmp_path / "btad.zip.part").write_bytes(body)
    download("btad", tmp_path, url=serve(server, "/btad.zip", body), sha256=sha256(body), quiet=True)
    assert server.ranges == [f"bytes={len(body)}-"] and (tmp_path / "02").is_dir()  # answered 416


def test_transfer_that_keeps_breaking_off_keeps_its_part_file_for_next_time(server, tmp_path):
    body = btad_zip()
    server.cuts = ATTEMPTS
    with pytest.raises(DataError, match=r"kept breaking off; run it again to resume from .*btad.zip.part \([\d,]+ "):
        download("btad", tmp_path, url=serve(server, "/btad.zip", body), sha256=sha256(body), quiet=True)
    assert 0 < (tmp_path / "btad.zip.part").stat().st_size < len(body)


def test_unreachable_server_is_a_data_error_that_names_the_address(tmp_path):
    with socket.socket() as unused:  # a port that nothing listens on once it is closed
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}/btad.zip"
    with pytest.raises(DataError, match=f"{url}: download failed after {ATTEMPTS} attempts .*nothing was downloaded"):
        download("btad", tmp_path, url=url, sha256="0" * 64, quiet=True)


def test_an_address_that_is_not_found_says_so_and_suggests_another_url(server, tmp_path):
    url = server.url("/missing.zip")
    with pytest.raises(DataError) as refused:
        download("btad", tmp_path, url=url, sha256="0" * 64, quiet=True)
    message = str(refused.value)
    assert message.startswith(f"{url}: not found (HTTP 404)") and "(--url)" in message
    assert "resume" not in message and ".part" not in message


def test_an_empty_part_file_is_no_partial_download(server, tmp_path):
    """A save killed (SIGKILL) before its first byte leaves an empty .part: nothing to resume from or report."""
    body = btad_zip()
    url = serve(server, "/btad.zip", body)
    (tmp_path / "btad.zip.part").write_bytes(b"")
    server.cuts, server.cut_keep = ATTEMPTS, 0  # every response breaks off before its first byte
    with pytest.raises(DataError) as refused:
        download("btad", tmp_path, url=url, sha256=sha256(body), quiet=True)
    message = str(refused.value)
    assert message.startswith(f"{url}: ") and "resume" not in message and ".part" not in message
    download("btad", tmp_path, url=url, sha256=sha256(body), quiet=True)
    assert server.ranges == [None] * (ATTEMPTS + 1) and (tmp_path / "01").is_dir()


# --- datasets without a download ----------------------------------------------

def test_mpdd_says_where_to_get_it_and_where_to_put_it(tmp_path):
    with pytest.raises(DataError, match=r"(?s)github.com/stepanje/MPDD.*mpdd/<category>/train/good.*bracket_black"):
        download("mpdd", tmp_path / "mpdd")


def test_unknown_or_generated_dataset_has_no_download(tmp_path):
    with pytest.raises(DataError, match="no download for dataset 'imagenet'"):
        download("imagenet", tmp_path)
    with pytest.raises(DataError, match="ulsad synth"):
        download("synthetic", tmp_path)
