"""Finds MovieLens 100K for the demo: ``$RECSYS_DATA_DIR``, a cache, or a checked download.

The licence forbids redistributing the data, so the project never ships it: a user either
points ``RECSYS_DATA_DIR`` at a copy or lets the demo fetch GroupLens's archive once into a
cache folder, where every file is checked against its published sha256.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

MOVIELENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
DEFAULT_CACHE = Path.home() / ".cache" / "realtime-recsys"

# The files the loader reads, with the sha256 of GroupLens's distribution.
EXPECTED_SHA256 = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
}

HOW_TO_GET_IT = f"""MovieLens 100K is needed and was not found.
Either
  - download {MOVIELENS_URL}, unzip it, rename the folder ml-100k to movielens-100k, and
    run with RECSYS_DATA_DIR=<the folder that contains movielens-100k>; or
  - allow this machine to reach files.grouplens.org and run again: the demo downloads it
    into {{cache}} and checks its sha256.
Its licence forbids redistribution, so the project does not ship it."""


class DataUnavailableError(RuntimeError):
    """Neither the environment, the cache nor a download produced a verified copy."""


Opener = Callable[[str], bytes]


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - fixed https URL
        return bytes(response.read())


def resolve_data_dir(
    cache_dir: Path = DEFAULT_CACHE,
    opener: Opener = _download,
    environ: dict[str, str] | None = None,
) -> Path:
    """The folder that contains ``movielens-100k/``, fetching it into the cache if needed.

    Raises
    ------
    DataUnavailableError
        With instructions, when the variable is unset, nothing is cached and the download
        fails or does not match the published checksums.
    """
    env = os.environ if environ is None else environ
    if env.get("RECSYS_DATA_DIR"):
        return Path(env["RECSYS_DATA_DIR"])

    target = cache_dir / "movielens-100k"
    if _verified(target):
        return cache_dir

    try:
        archive = opener(MOVIELENS_URL)
    except OSError as error:
        raise DataUnavailableError(
            f"download failed ({error})\n" + HOW_TO_GET_IT.format(cache=cache_dir)
        ) from None
    _extract(archive, target)
    if not _verified(target):
        raise DataUnavailableError(
            "the downloaded files do not match the published sha256\n"
            + HOW_TO_GET_IT.format(cache=cache_dir)
        )
    return cache_dir


def _verified(folder: Path) -> bool:
    for name, digest in EXPECTED_SHA256.items():
        path = folder / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            return False
    return True


def _extract(archive: bytes, target: Path) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
            target.mkdir(parents=True, exist_ok=True)
            for name in EXPECTED_SHA256:
                (target / name).write_bytes(bundle.read(f"ml-100k/{name}"))
    except (zipfile.BadZipFile, KeyError) as error:
        raise DataUnavailableError(
            f"the download is not the MovieLens archive ({error})\n"
            + HOW_TO_GET_IT.format(cache=target.parent)
        ) from None
