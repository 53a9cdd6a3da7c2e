"""Fetch, verify and unpack source archives without trusting them.

The official archives are pinned by size and SHA-256, so a truncated download, a proxy's error
page or a silently changed upstream file fails loudly here instead of as odd accuracies later.
Everything that writes goes to a temporary name next to its destination and is renamed into
place only when complete, so a failure never leaves something that looks finished.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import posixpath
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterable
from pathlib import Path

ARCHIVES: dict[str, dict] = {
    "cifar10_binary": {
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        "filename": "cifar-10-binary.tar.gz",
        "size": 170_052_171,
        "sha256": "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    },
    "cifar100_binary": {
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        "filename": "cifar-100-binary.tar.gz",
        "size": 168_513_733,
        "sha256": "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
    },
}

_CHUNK = 1 << 20


class ChecksumError(ValueError):
    """A file's size or SHA-256 is not the pinned one."""


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the extraction directory (or is special)."""


class ArchiveReadError(ValueError):
    """An archive cannot be read: truncated, corrupt, or not a tar file."""


class DownloadError(ConnectionError):
    """A download failed because the host could not be reached."""


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def verify(path: str | Path, size: int | None, sha256: str | None) -> str:
    """Check `path` against the expected size, then SHA-256; returns the actual SHA-256.

    The size is checked first because it is free and catches the common failure (a truncated
    download) without reading 170 MB. `None` skips a check.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: archive not found")
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise ChecksumError(
            f"{path}: size is {actual_size:,} bytes, expected {size:,} bytes "
            "(truncated download or a different file?)"
        )
    actual = sha256_of(path)
    if sha256 is not None and actual != sha256.lower():
        raise ChecksumError(f"{path}: sha256 is {actual}, expected {sha256.lower()}")
    return actual


def _offline_message(url: str, dest: Path, reason: object) -> str:
    host = urllib.parse.urlsplit(url).hostname or url
    return (
        f"cannot download {url}: host {host} is unreachable ({reason}). This machine may be "
        f"offline. Download {posixpath.basename(urllib.parse.urlsplit(url).path)} on a machine "
        "with internet access, copy it here, and point the dataset at it with "
        f"`archive: PATH` in the config instead of downloading (wanted at {dest})."
    )


def download(
    url: str, dest: str | Path, size: int | None, sha256: str | None, timeout: float = 60.0
) -> Path:
    """Download `url` to `dest`, verified; nothing is left at `dest` unless it verifies."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    shutil.copyfileobj(response, out, _CHUNK)
            except urllib.error.HTTPError as exc:  # reached the host, which refused
                raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                raise DownloadError(_offline_message(url, dest, reason)) from exc
        verify(tmp, size, sha256)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def fetch(source: str, dest: str | Path, timeout: float = 60.0) -> Path:
    """Download the official archive of `source` (a key of `ARCHIVES`) to `dest`."""
    entry = ARCHIVES[source]
    return download(entry["url"], dest, entry["size"], entry["sha256"], timeout=timeout)


def open_tar(archive_path: str | Path) -> tarfile.TarFile:
    """Open a (possibly compressed) tar archive, with a readable error if it is not one."""
    if not Path(archive_path).is_file():
        raise FileNotFoundError(f"{archive_path}: archive not found")
    try:
        return tarfile.open(archive_path, "r:*")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveReadError(f"{archive_path}: not a readable tar archive ({exc})") from exc


def check_member(member: tarfile.TarInfo, archive_path: str | Path) -> None:
    """Refuse a member that `filter="data"` would refuse (escapes, absolute, special files).

    The stdlib filter holds the rules; calling it up front, before anything is written, lets a
    bad member late in an archive fail the whole extraction rather than half of it.
    """
    if member.name.startswith(("/", os.sep)):
        # The data filter would quietly strip the slash; an absolute name is never legitimate
        # in a dataset archive, so it is refused outright.
        raise UnsafeArchiveError(
            f"{archive_path}: unsafe member {member.name!r}: absolute path; refusing the archive"
        )
    try:
        tarfile.data_filter(member, os.path.realpath("/nonexistent-extraction-root"))
    except tarfile.FilterError as exc:
        raise UnsafeArchiveError(
            f"{archive_path}: unsafe member {member.name!r}: {exc}; refusing the archive"
        ) from exc


def normalize_name(name: str) -> str:
    """A member name without a leading './' (tar tools differ in writing one)."""
    norm = posixpath.normpath(name)
    return "" if norm == "." else norm


def read_members(archive_path: str | Path, names: Iterable[str]) -> dict[str, bytes]:
    """The contents of the named regular-file members, read in a single pass.

    Every member is checked as if it were extracted, so a malicious archive is rejected even
    though nothing is written to disk. A missing member is an error naming it.
    """
    wanted = {normalize_name(n) for n in names}
    found: dict[str, bytes] = {}
    try:
        with open_tar(archive_path) as tar:
            # One forward pass: reading each member as it streams past keeps gzip from
            # rewinding and decompressing the archive again for every file.
            for member in tar:
                check_member(member, archive_path)
                name = normalize_name(member.name)
                if name in wanted and member.isfile():
                    handle = tar.extractfile(member)
                    assert handle is not None  # isfile() guarantees a file object
                    found[name] = handle.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveReadError(
            f"{archive_path}: cannot read the archive (truncated or corrupt?): {exc}"
        ) from exc
    missing = sorted(wanted - set(found))
    if missing:
        raise ArchiveReadError(f"{archive_path}: missing member(s) {missing}")
    return found


def _replace_dir(new: Path, target: Path) -> None:
    if not target.exists():
        os.rename(new, target)
        return
    old = target.with_name(f".{target.name}.old{os.getpid()}")
    os.rename(target, old)
    os.rename(new, target)
    shutil.rmtree(old, ignore_errors=True)


def safe_extract(
    archive_path: str | Path, target_dir: str | Path, members: Iterable[str] | None = None
) -> Path:
    """Extract (the named members of) an archive so that its contents become `target_dir`.

    Extraction goes to a temporary folder beside `target_dir`, which replaces `target_dir`
    only once everything is out: a failure leaves neither partial output nor anything outside.
    """
    target = Path(target_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        with open_tar(archive_path) as tar:
            try:
                all_members = tar.getmembers()
            except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
                raise ArchiveReadError(
                    f"{archive_path}: cannot read the archive (truncated or corrupt?): {exc}"
                ) from exc
            for member in all_members:
                check_member(member, archive_path)
            chosen = all_members
            if members is not None:
                wanted = {normalize_name(n) for n in members}
                chosen = [m for m in all_members if normalize_name(m.name) in wanted]
                missing = sorted(wanted - {normalize_name(m.name) for m in chosen})
                if missing:
                    raise ArchiveReadError(f"{archive_path}: missing member(s) {missing}")
            try:
                tar.extractall(tmp, members=chosen, filter="data")
            except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
                raise ArchiveReadError(
                    f"{archive_path}: cannot extract the archive (truncated or corrupt?): {exc}"
                ) from exc
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def main(argv: list[str] | None = None) -> int:
    """`python -m cnnablate.data.archive download|verify SOURCE PATH` (for Snakemake rules)."""
    parser = argparse.ArgumentParser(prog="python -m cnnablate.data.archive")
    parser.add_argument("action", choices=("download", "verify"))
    parser.add_argument("source", choices=sorted(ARCHIVES))
    parser.add_argument("path", type=Path)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    entry = ARCHIVES[args.source]
    try:
        if args.action == "download":
            fetch(args.source, args.path, timeout=args.timeout)
        else:
            verify(args.path, entry["size"], entry["sha256"])
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.path}: ok ({entry['sha256']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
