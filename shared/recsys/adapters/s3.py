"""Model artifacts, the event archive and the catalogue in S3.

Key layout, relative to each store's prefix:

- models: ``{version}/model.npz``, ``{version}/manifest.json`` and the pointer
  ``current.json``, which is written last;
- events: ``dt=YYYY-MM-DD/<object>``, newline-delimited JSON as Firehose writes it,
  gzip-compressed when the key ends in ``.gz``;
- catalogue: a single JSON-lines object of :class:`recsys.catalog.CatalogItem`.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta

from botocore.client import BaseClient
from botocore.exceptions import ClientError
from pydantic import ValidationError

from recsys.catalog import CatalogItem
from recsys.errors import CatalogError, ModelIntegrityError, ModelNotFoundError
from recsys.model import parse_manifest
from recsys.ports import ModelPointer

logger = logging.getLogger(__name__)

PAYLOAD_NAME = "model.npz"
MANIFEST_NAME = "manifest.json"
POINTER_NAME = "current.json"

PAYLOAD_CONTENT_TYPE = "application/octet-stream"
JSON_CONTENT_TYPE = "application/json"
JSON_LINES_CONTENT_TYPE = "application/x-ndjson"

GZIP_SUFFIX = ".gz"

# GetObject answers NoSuchKey for a missing key, or a bare 404 when the error carries no
# body; a caller without s3:ListBucket gets AccessDenied instead, which is not "missing".
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def _is_missing_key(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _MISSING_KEY_CODES


def _check_prefix(prefix: str) -> str:
    if prefix and not prefix.endswith("/"):
        raise ValueError(f"prefix {prefix!r} must be empty or end with '/'")
    return prefix


def _check_name(kind: str, name: str) -> str:
    if not name or "/" in name:
        raise ValueError(f"{kind} {name!r} must be non-empty and contain no '/'")
    return name


def _utc_now() -> datetime:
    return datetime.now(UTC)


class S3ModelStore:
    """A :class:`recsys.ports.ModelStore` on one bucket and prefix.

    Parameters
    ----------
    client : botocore.client.BaseClient
        A low-level ``boto3.client("s3")``.
    bucket : str
        The model bucket.
    prefix : str
        Folder of the artifacts and the pointer; empty or ending in ``/``.
    clock : Callable[[], datetime], optional
        The aware UTC time stamped on a pointer when it is published.
    """

    def __init__(
        self,
        client: BaseClient,
        bucket: str,
        prefix: str = "models/",
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = _check_prefix(prefix)
        self._clock = clock

    @property
    def pointer_key(self) -> str:
        """Key of the pointer object that names the serving model."""
        return f"{self._prefix}{POINTER_NAME}"

    def payload_key(self, version: str) -> str:
        """Key of a version's npz payload."""
        return f"{self._prefix}{_check_name('version', version)}/{PAYLOAD_NAME}"

    def manifest_key(self, version: str) -> str:
        """Key of a version's JSON manifest."""
        return f"{self._prefix}{_check_name('version', version)}/{MANIFEST_NAME}"

    def read_pointer(self) -> ModelPointer | None:
        """Read the pointer to the serving model.

        Returns
        -------
        ModelPointer or None
            None when the pointer object does not exist: no model was ever published.

        Raises
        ------
        ModelIntegrityError
            If the pointer object exists but is not a valid pointer.
        """
        try:
            raw = self._get(self.pointer_key)
        except ClientError as error:
            if _is_missing_key(error):
                return None
            raise

        try:
            return ModelPointer.model_validate_json(raw)
        except ValidationError as error:
            raise ModelIntegrityError(
                f"pointer s3://{self._bucket}/{self.pointer_key} is invalid: {error}"
            ) from None

    def read_object(self, key: str) -> bytes:
        """Read an artifact's bytes.

        Raises
        ------
        ModelNotFoundError
            If no object has that key, e.g. the pointer names a deleted version.
        """
        try:
            return self._get(key)
        except ClientError as error:
            if _is_missing_key(error):
                raise ModelNotFoundError(
                    f"model object s3://{self._bucket}/{key} does not exist"
                ) from None
            raise

    def publish(self, version: str, payload: bytes, manifest_json: bytes) -> ModelPointer:
        """Write a model's payload and manifest, then swap the pointer to it.

        The pointer is written only after both artifacts are stored, so a reader that starts
        from the pointer finds either the previous model or this one, whole.

        Parameters
        ----------
        version : str
            The model version; it names the folder of the artifacts.
        payload : bytes
            The npz payload.
        manifest_json : bytes
            The manifest; its ``version`` and ``sha256`` must describe this payload.

        Returns
        -------
        ModelPointer
            The pointer now stored.

        Raises
        ------
        ModelIntegrityError
            If the manifest is invalid or disagrees with ``version`` or the payload's sha256.
            Nothing is written then.
        """
        sha256 = hashlib.sha256(payload).hexdigest()
        manifest = parse_manifest(manifest_json)
        if manifest.version != version or manifest.sha256 != sha256:
            raise ModelIntegrityError(
                f"manifest of version {manifest.version} (sha256 {manifest.sha256[:12]}...) "
                f"does not describe payload {version} (sha256 {sha256[:12]}...)"
            )

        payload_key = self.payload_key(version)
        manifest_key = self.manifest_key(version)
        self._client.put_object(
            Bucket=self._bucket,
            Key=payload_key,
            Body=payload,
            ContentType=PAYLOAD_CONTENT_TYPE,
            Metadata={"sha256": sha256},
        )
        self._client.put_object(
            Bucket=self._bucket,
            Key=manifest_key,
            Body=manifest_json,
            ContentType=JSON_CONTENT_TYPE,
            Metadata={"payload-sha256": sha256},
        )

        pointer = ModelPointer(
            version=version,
            payload_key=payload_key,
            manifest_key=manifest_key,
            sha256=sha256,
            published_at=self._clock().astimezone(UTC).isoformat(),
        )
        self._client.put_object(
            Bucket=self._bucket,
            Key=self.pointer_key,
            Body=pointer.model_dump_json().encode("utf-8"),
            ContentType=JSON_CONTENT_TYPE,
        )
        logger.info("published model %s to s3://%s/%s", version, self._bucket, payload_key)

        return pointer

    def _get(self, key: str) -> bytes:
        response = self._client.get_object(Bucket=self._bucket, Key=key)
        body: bytes = response["Body"].read()
        return body


class S3EventArchive:
    """A :class:`recsys.ports.EventArchive` on the folders Firehose writes, one per day.

    Parameters
    ----------
    client : botocore.client.BaseClient
        A low-level ``boto3.client("s3")``.
    bucket : str
        The archive bucket.
    prefix : str
        Folder that holds the ``dt=YYYY-MM-DD/`` folders; empty or ending in ``/``.
    """

    def __init__(self, client: BaseClient, bucket: str, prefix: str = "events/") -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = _check_prefix(prefix)

    def day_prefix(self, day: date) -> str:
        """Folder of one day's objects, with its trailing ``/``."""
        return f"{self._prefix}dt={day.isoformat()}/"

    def read_lines(self, first_day: date, last_day: date) -> Iterator[bytes]:
        """Yield every non-blank archived line of the days ``first_day`` to ``last_day``.

        Days come in calendar order and, within a day, objects in key order. Lines are
        yielded without their line ending and are not parsed: a bad line is the caller's
        to skip or count.

        Raises
        ------
        ValueError
            If ``last_day`` is before ``first_day``.
        """
        if last_day < first_day:
            raise ValueError(f"last_day {last_day} is before first_day {first_day}")

        for offset in range((last_day - first_day).days + 1):
            day = first_day + timedelta(days=offset)
            for key in self._day_keys(day):
                yield from self._object_lines(key)

    def write_lines(self, day: date, lines: list[bytes], name: str) -> str:
        """Write one archive object into a day's folder, as Firehose would.

        Parameters
        ----------
        day : date
            The folder to write into.
        lines : list of bytes
            Records without line endings; each becomes one line.
        name : str
            Object name inside the folder; a name ending in ``.gz`` is gzip-compressed.

        Returns
        -------
        str
            The object's key.

        Raises
        ------
        ValueError
            If a line holds a line break, or the name is empty or holds ``/``.
        """
        if any(b"\n" in line for line in lines):
            raise ValueError("an archive line must not contain a line break")

        key = f"{self.day_prefix(day)}{_check_name('object name', name)}"
        body = b"".join(line + b"\n" for line in lines)
        if name.endswith(GZIP_SUFFIX):
            # A fixed mtime keeps the object's bytes a function of its lines alone.
            body = gzip.compress(body, mtime=0)

        self._client.put_object(Bucket=self._bucket, Key=key, Body=body)
        return key

    def _day_keys(self, day: date) -> list[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        keys = [
            entry["Key"]
            for page in paginator.paginate(Bucket=self._bucket, Prefix=self.day_prefix(day))
            for entry in page.get("Contents", [])
            if not entry["Key"].endswith("/")
        ]

        # General purpose buckets list in key order already; directory buckets do not.
        keys.sort()
        logger.debug("archive day %s holds %d objects", day, len(keys))
        return keys

    def _object_lines(self, key: str) -> Iterator[bytes]:
        response = self._client.get_object(Bucket=self._bucket, Key=key)
        data: bytes = response["Body"].read()
        if key.endswith(GZIP_SUFFIX):
            data = gzip.decompress(data)

        for line in data.split(b"\n"):
            stripped = line.strip()
            if stripped:
                yield stripped


class S3CatalogSource:
    """A :class:`recsys.ports.CatalogSource` on one JSON-lines object.

    Parameters
    ----------
    client : botocore.client.BaseClient
        A low-level ``boto3.client("s3")``.
    bucket : str
        The bucket of the catalogue.
    key : str
        The catalogue object: one :class:`recsys.catalog.CatalogItem` as JSON per line.
    """

    def __init__(self, client: BaseClient, bucket: str, key: str = "catalog/items.jsonl") -> None:
        self._client = client
        self._bucket = bucket
        self._key = key

    def read_catalog(self) -> list[CatalogItem]:
        """Read every catalogue entry, in the object's order; blank lines are skipped.

        Returns
        -------
        list of CatalogItem
            Empty when the catalogue object does not exist.

        Raises
        ------
        CatalogError
            If a line is not a valid entry; the message gives its 1-based line number.
        """
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=self._key)
        except ClientError as error:
            if _is_missing_key(error):
                logger.info("no catalogue at s3://%s/%s", self._bucket, self._key)
                return []
            raise

        data: bytes = response["Body"].read()
        items = []
        for number, line in enumerate(data.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                items.append(CatalogItem.model_validate_json(line))
            except ValidationError as error:
                raise CatalogError(
                    f"catalogue s3://{self._bucket}/{self._key} line {number}: {error}"
                ) from None

        return items

    def write_catalog(self, items: Iterable[CatalogItem]) -> None:
        """Replace the catalogue object with ``items``, one JSON line each."""
        body = "".join(f"{item.model_dump_json()}\n" for item in items).encode("utf-8")
        self._client.put_object(
            Bucket=self._bucket,
            Key=self._key,
            Body=body,
            ContentType=JSON_LINES_CONTENT_TYPE,
        )
