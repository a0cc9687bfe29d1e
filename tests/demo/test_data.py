"""The demo finds MovieLens through the env, a verified cache, or a checked download."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from recsys_demo.data import EXPECTED_SHA256, DataUnavailableError, resolve_data_dir

SHARED = Path(os.environ.get("RECSYS_DATA_DIR", "/nonexistent")) / "movielens-100k"
needs_movielens = pytest.mark.skipif(
    not (SHARED / "u.data").is_file(), reason="needs MovieLens 100K under $RECSYS_DATA_DIR"
)


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, content in files.items():
            bundle.writestr(f"ml-100k/{name}", content)
    return buffer.getvalue()


def _never_called(url: str) -> bytes:
    raise AssertionError(f"unexpected download of {url}")


def test_environment_variable_wins_without_any_download(tmp_path):
    found = resolve_data_dir(tmp_path, _never_called, {"RECSYS_DATA_DIR": "/data/here"})
    assert found == Path("/data/here")


def test_failed_download_explains_how_to_get_the_data(tmp_path):
    def offline(url: str) -> bytes:
        raise OSError("network unreachable")

    with pytest.raises(DataUnavailableError) as caught:
        resolve_data_dir(tmp_path, offline, {})
    message = str(caught.value)
    assert "network unreachable" in message
    assert "RECSYS_DATA_DIR" in message and "movielens-100k" in message


def test_download_with_wrong_contents_is_refused(tmp_path):
    tampered = _zip({name: b"not the real file" for name in EXPECTED_SHA256})
    with pytest.raises(DataUnavailableError, match="sha256"):
        resolve_data_dir(tmp_path, lambda url: tampered, {})


def test_download_that_is_not_a_zip_is_refused(tmp_path):
    with pytest.raises(DataUnavailableError, match="not the MovieLens archive"):
        resolve_data_dir(tmp_path, lambda url: b"<html>captive portal</html>", {})


@needs_movielens
def test_verified_download_is_cached_and_reused(tmp_path):
    # GIVEN a download that carries the real files
    genuine = _zip({name: (SHARED / name).read_bytes() for name in EXPECTED_SHA256})
    calls = []

    def opener(url: str) -> bytes:
        calls.append(url)
        return genuine

    # WHEN resolved twice
    first = resolve_data_dir(tmp_path, opener, {})
    second = resolve_data_dir(tmp_path, _never_called, {})

    # THEN it was downloaded once, into the cache, and the cache is reused
    assert first == second == tmp_path
    assert len(calls) == 1
    assert (tmp_path / "movielens-100k" / "u.data").read_bytes() == (SHARED / "u.data").read_bytes()
