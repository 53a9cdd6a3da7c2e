"""Verification, download and safe extraction of source archives (no network)."""

from __future__ import annotations

import hashlib
import urllib.error

import pytest

from cnnablate.data import archive
from cnnablate.data.synthetic import write_tar


def _file(tmp_path, data=b"hello world\n", name="a.bin"):
    path = tmp_path / name
    path.write_bytes(data)
    return path, len(data), hashlib.sha256(data).hexdigest()


def _entries(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_official_pins():
    assert archive.ARCHIVES["cifar10_binary"]["size"] == 170_052_171
    assert archive.ARCHIVES["cifar100_binary"]["sha256"].startswith("58a81ae1")
    for entry in archive.ARCHIVES.values():
        assert entry["url"].endswith("/" + entry["filename"])
        assert len(entry["sha256"]) == 64


def test_verify_ok_returns_digest(tmp_path):
    path, size, sha = _file(tmp_path)
    assert archive.verify(path, size, sha) == sha
    assert archive.verify(path, None, None) == sha


def test_verify_wrong_size_checked_before_hashing(tmp_path, monkeypatch):
    path, size, sha = _file(tmp_path)
    monkeypatch.setattr(archive, "sha256_of", lambda p: pytest.fail("hashed despite bad size"))
    with pytest.raises(archive.ChecksumError) as err:
        archive.verify(path, size + 1, sha)
    message = str(err.value)
    assert str(path) in message and f"{size:,} bytes" in message and f"{size + 1:,}" in message


def test_verify_wrong_sha256(tmp_path):
    path, size, sha = _file(tmp_path)
    with pytest.raises(archive.ChecksumError) as err:
        archive.verify(path, size, "ab" * 32)
    assert str(path) in str(err.value) and sha in str(err.value) and "ab" * 32 in str(err.value)


def test_verify_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tar.gz"):
        archive.verify(tmp_path / "missing.tar.gz", 1, None)


def test_download_file_url(tmp_path):
    src, size, sha = _file(tmp_path, b"x" * 5000, "src.bin")
    dest = tmp_path / "out" / "dest.bin"
    assert archive.download(src.as_uri(), dest, size, sha) == dest
    assert dest.read_bytes() == b"x" * 5000
    assert _entries(dest.parent) == ["dest.bin"]  # no temp file left


def test_download_bad_checksum_leaves_nothing(tmp_path):
    src, size, _ = _file(tmp_path, b"y" * 100, "src.bin")
    dest = tmp_path / "out" / "dest.bin"
    with pytest.raises(archive.ChecksumError):
        archive.download(src.as_uri(), dest, size, "0" * 64)
    assert _entries(dest.parent) == []


def test_download_offline_is_clear_and_leaves_nothing(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(archive.urllib.request, "urlopen", offline)
    dest = tmp_path / "out" / "cifar-10-binary.tar.gz"
    with pytest.raises(archive.DownloadError) as err:
        archive.fetch("cifar10_binary", dest)
    message = str(err.value)
    assert "www.cs.toronto.edu" in message and "`archive: PATH`" in message
    assert "name resolution" in message
    assert _entries(dest.parent) == []


def test_safe_extract_all_and_subset(tmp_path):
    arc = write_tar(tmp_path / "a.tar.gz", {"d/x.txt": b"x", "d/y.txt": b"y", "./z.txt": b"z"})
    out = archive.safe_extract(arc, tmp_path / "out")
    assert _entries(out) == ["d", "d/x.txt", "d/y.txt", "z.txt"]
    assert (out / "d" / "x.txt").read_bytes() == b"x"
    sub = archive.safe_extract(arc, tmp_path / "sub", members=["d/y.txt", "z.txt"])
    assert _entries(sub) == ["d", "d/y.txt", "z.txt"]
    # re-extracting replaces the previous contents wholesale
    archive.safe_extract(arc, tmp_path / "sub", members=["z.txt"])
    assert _entries(tmp_path / "sub") == ["z.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz", "out", "sub"]  # no temps
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_safe_extract_missing_member(tmp_path):
    arc = write_tar(tmp_path / "a.tar.gz", {"x.txt": b"x"})
    with pytest.raises(archive.ArchiveReadError, match="nope.txt"):
        archive.safe_extract(arc, tmp_path / "out", members=["nope.txt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz"]


@pytest.mark.parametrize(
    ("members", "symlinks", "bad"),
    [
        ({"ok.txt": b"1", "../evil.txt": b"2"}, None, "../evil.txt"),
        ({"ok.txt": b"1", "d/../../evil.txt": b"2"}, None, "d/../../evil.txt"),
        ({"ok.txt": b"1", "/tmp/cnnablate-evil.txt": b"2"}, None, "/tmp/cnnablate-evil.txt"),
        ({"ok.txt": b"1"}, {"link": "../../etc"}, "link"),
        ({"ok.txt": b"1"}, {"abs_link": "/etc/passwd"}, "abs_link"),
    ],
)
def test_safe_extract_rejects_escaping_members(tmp_path, members, symlinks, bad):
    work = tmp_path / "work"
    work.mkdir()
    arc = write_tar(tmp_path / "evil.tar.gz", members, symlinks=symlinks)
    with pytest.raises(archive.UnsafeArchiveError) as err:
        archive.safe_extract(arc, work / "out")
    assert repr(bad) in str(err.value) and "evil.tar.gz" in str(err.value)
    assert _entries(work) == []  # no partial output, no temp folder
    assert not (tmp_path / "evil.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar.gz", "work"]
    with pytest.raises(archive.UnsafeArchiveError, match="unsafe member"):
        archive.read_members(arc, ["ok.txt"])


def test_safe_extract_allows_internal_symlink(tmp_path):
    arc = write_tar(tmp_path / "a.tar.gz", {"d/x.txt": b"x"}, symlinks={"d/alias": "x.txt"})
    out = archive.safe_extract(arc, tmp_path / "out")
    assert (out / "d" / "alias").read_bytes() == b"x"


def test_truncated_archive(tmp_path):
    arc = write_tar(tmp_path / "a.tar.gz", {"x.bin": bytes(range(256)) * 4000})
    data = arc.read_bytes()
    arc.write_bytes(data[: len(data) // 2])
    with pytest.raises(archive.ArchiveReadError, match="truncated or corrupt"):
        archive.read_members(arc, ["x.bin"])
    with pytest.raises(archive.ArchiveReadError, match="truncated or corrupt"):
        archive.safe_extract(arc, tmp_path / "work" / "out")
    assert _entries(tmp_path / "work") == []


def test_not_an_archive(tmp_path):
    path, _, _ = _file(tmp_path, b"<html>proxy error page</html>", "fake.tar.gz")
    with pytest.raises(archive.ArchiveReadError, match="fake.tar.gz"):
        archive.read_members(path, ["x"])


def test_cli_verify(tmp_path, capsys):
    path, _, _ = _file(tmp_path, b"not cifar", "cifar-10-binary.tar.gz")
    assert archive.main(["verify", "cifar10_binary", str(path)]) == 1
    assert "170,052,171" in capsys.readouterr().err
