"""Cache, download and checksum logic, without network (file:// URLs and a fake opener)."""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
from pathlib import Path

import pytest

from multitask.datasets import _cache
from multitask.datasets._cache import ChecksumError, DatasetNotFoundError, cache_dir, fetch
from multitask.datasets._files import FILES, FileEntry

PAYLOAD = b"multi-task learning\n" * 1000


def _entry(src: Path, data: bytes = PAYLOAD, **kw) -> FileEntry:
    digest = hashlib.sha256(data).hexdigest()
    return FileEntry("toy/toy.bin", digest, len(data), src.as_uri(), **kw)


@pytest.fixture
def source(tmp_path) -> Path:
    src = tmp_path / "upstream" / "toy.bin"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    return src


def test_cache_dir_env_and_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("MULTITASK_DATA", str(tmp_path / "a"))
    assert cache_dir() == tmp_path / "a"
    monkeypatch.delenv("MULTITASK_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "multitask"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "multitask"


def test_download_from_file_url_is_atomic_and_verified(source, tmp_path):
    root = tmp_path / "cache"
    path = fetch(_entry(source), root=root)
    assert path == root / "toy" / "toy.bin"
    assert path.read_bytes() == PAYLOAD
    # no temporary file is left behind
    assert sorted(p.name for p in path.parent.iterdir()) == [".toy.bin.sha256ok", "toy.bin"]


def test_download_of_gzip_source_is_checked_then_compressed(source, tmp_path):
    content = hashlib.sha256(PAYLOAD).hexdigest()
    entry = FileEntry("toy/toy.bin.gz", "0" * 64, 0, source.as_uri(), True, content)
    path = fetch(entry, root=tmp_path / "cache")
    assert gzip.decompress(path.read_bytes()) == PAYLOAD


def test_corrupt_download_raises_and_leaves_nothing(source, tmp_path):
    entry = _entry(source, data=b"something else")
    root = tmp_path / "cache"
    with pytest.raises(ChecksumError, match=entry.sha256) as exc:
        fetch(entry, root=root)
    assert hashlib.sha256(PAYLOAD).hexdigest() in str(exc.value)
    assert list((root / "toy").iterdir()) == []


def test_missing_file_without_network_names_file_dir_and_env(monkeypatch, tmp_path):
    def offline(url, timeout=60.0):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(_cache, "_urlopen", offline)
    entry = FileEntry("toy/toy.bin", "0" * 64, 1, "https://example.invalid/toy.bin")
    with pytest.raises(DatasetNotFoundError) as exc:
        fetch(entry, root=tmp_path / "cache")
    msg = str(exc.value)
    assert "toy/toy.bin" in msg and str(tmp_path / "cache") in msg and "MULTITASK_DATA" in msg


def test_no_download_flag(tmp_path, source):
    with pytest.raises(DatasetNotFoundError, match="MULTITASK_DATA"):
        fetch(_entry(source), root=tmp_path, download_if_missing=False)


def test_truncated_cached_file_raises_with_both_hashes(tmp_path, source):
    entry = _entry(source)
    target = tmp_path / entry.path
    target.parent.mkdir(parents=True)
    target.write_bytes(PAYLOAD[:-100])
    got = hashlib.sha256(PAYLOAD[:-100]).hexdigest()
    with pytest.raises(ChecksumError, match="Delete it") as exc:
        fetch(entry, root=tmp_path)
    assert got in str(exc.value) and entry.sha256 in str(exc.value)


def test_verified_file_is_not_rehashed_but_a_change_is_detected(tmp_path, source, monkeypatch):
    entry = _entry(source)
    path = fetch(entry, root=tmp_path / "cache")
    calls = []
    real = _cache.sha256_file
    monkeypatch.setattr(_cache, "sha256_file", lambda p, **kw: calls.append(p) or real(p, **kw))
    fetch(entry, root=tmp_path / "cache")
    assert calls == []  # remembered
    _cache._VERIFIED.clear()
    fetch(entry, root=tmp_path / "cache")
    assert calls == []  # remembered by the sidecar file
    # Same size, same mtime, different bytes: ctime still changes, so it is rehashed.
    st = path.stat()
    path.write_bytes(PAYLOAD[:-1] + b"?")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(ChecksumError):
        fetch(entry, root=tmp_path / "cache")
    assert calls


def test_recompressed_gz_accepted_by_content_hash(tmp_path, source):
    content = hashlib.sha256(PAYLOAD).hexdigest()
    entry = FileEntry("toy/toy.bin.gz", "0" * 64, 0, "", content_sha256=content)
    target = tmp_path / entry.path
    target.parent.mkdir(parents=True)
    target.write_bytes(gzip.compress(PAYLOAD, compresslevel=1))
    assert fetch(entry, root=tmp_path) == target


def test_registry_matches_shared_sha256sums(real_data):
    sums = dict(
        reversed(line.split()) for line in (real_data / "SHA256SUMS").read_text().splitlines()
    )
    for path, entry in FILES.items():
        assert sums[path] == entry.sha256, path
        assert (real_data / path).stat().st_size == entry.size, path
        name = Path(path).name.removesuffix(".gz") if entry.gzip_source else Path(path).name
        assert entry.url.startswith("https://") and entry.url.endswith(name), entry.url


def test_real_files_verify(real_data):
    for entry in FILES.values():
        assert fetch(entry, root=real_data, download_if_missing=False).is_file()


def test_user_filled_folder_is_never_written(tmp_path, source):
    entry = _entry(source)
    target = tmp_path / entry.path
    target.parent.mkdir(parents=True)
    target.write_bytes(PAYLOAD)
    fetch(entry, root=tmp_path)
    assert list(target.parent.iterdir()) == [target]


def test_load_downloads_into_an_empty_cache(real_data, tmp_path, monkeypatch):
    """End to end: School and Adult fetched from file:// mirrors of their upstream files."""
    import dataclasses

    from multitask.datasets import load

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "school.mat").write_bytes((real_data / "school/school.mat").read_bytes())
    for name in ("adult.data", "adult.test"):  # upstream serves these uncompressed
        raw = gzip.decompress((real_data / f"adult/{name}.gz").read_bytes())
        (mirror / name).write_bytes(raw)
    urls = {
        "school/school.mat": mirror / "school.mat",
        "adult/adult.data.gz": mirror / "adult.data",
        "adult/adult.test.gz": mirror / "adult.test",
    }
    for path, src in urls.items():
        monkeypatch.setitem(FILES, path, dataclasses.replace(FILES[path], url=src.as_uri()))
    cache = tmp_path / "cache"
    monkeypatch.setenv("MULTITASK_DATA", str(cache))
    assert load("school").n_samples == 15362
    assert load("adult").n_samples == 48842
    assert (cache / "school/school.mat").read_bytes() == (
        real_data / "school/school.mat"
    ).read_bytes()
    assert gzip.decompress((cache / "adult/adult.test.gz").read_bytes()) == raw
