"""The S3 adapters against moto: model publishing, the event archive and the catalogue."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, date, datetime

import numpy as np
import pytest
from botocore.client import BaseClient

from recsys.adapters.s3 import S3CatalogSource, S3EventArchive, S3ModelStore
from recsys.catalog import CatalogItem
from recsys.errors import CatalogError, ModelIntegrityError, ModelNotFoundError
from tests.adapters.conftest import RecordingClient
from tests.factories import make_model

PUBLISHED_AT = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
DAY = date(2026, 11, 1)

# One more object than a single ListObjectsV2 page holds.
MORE_THAN_ONE_PAGE = 1001


def _artifact() -> tuple[str, bytes, bytes]:
    """A small valid model: its version, payload and manifest JSON."""
    model, payload = make_model(np.eye(3, 2))
    return model.version, payload, model.manifest.model_dump_json().encode("utf-8")


def _keys(client: BaseClient, bucket: str) -> list[str]:
    listed = client.list_objects_v2(Bucket=bucket)
    return [entry["Key"] for entry in listed.get("Contents", [])]


@pytest.fixture
def model_store(s3_client: BaseClient, bucket: str) -> S3ModelStore:
    return S3ModelStore(s3_client, bucket, clock=lambda: PUBLISHED_AT)


@pytest.fixture
def archive(s3_client: BaseClient, bucket: str) -> S3EventArchive:
    return S3EventArchive(s3_client, bucket)


@pytest.fixture
def catalog(s3_client: BaseClient, bucket: str) -> S3CatalogSource:
    return S3CatalogSource(s3_client, bucket)


# ----------------------------------------------------------------------- model store ---


def test_publish_writes_the_pointer_after_payload_and_manifest(s3_client, bucket):
    # GIVEN a model store whose client calls are recorded
    recording = RecordingClient(s3_client)
    store = S3ModelStore(recording, bucket)
    version, payload, manifest_json = _artifact()

    # WHEN a model is published
    store.publish(version, payload, manifest_json)

    # THEN payload and manifest were stored before the pointer, which came last
    written = [arguments["Key"] for name, arguments in recording.calls if name == "put_object"]
    assert written == [
        f"models/{version}/model.npz",
        f"models/{version}/manifest.json",
        "models/current.json",
    ]


def test_published_artifacts_read_back_through_the_pointer(model_store):
    # GIVEN a published model
    version, payload, manifest_json = _artifact()
    model_store.publish(version, payload, manifest_json)

    # WHEN a reader starts from the pointer
    pointer = model_store.read_pointer()

    # THEN it names this version, and its keys give back the exact bytes
    assert pointer is not None
    assert pointer.version == version
    assert pointer.sha256 == hashlib.sha256(payload).hexdigest()
    assert pointer.published_at == PUBLISHED_AT.isoformat()
    assert model_store.read_object(pointer.payload_key) == payload
    assert model_store.read_object(pointer.manifest_key) == manifest_json


def test_publish_returns_the_pointer_it_stored(model_store):
    # GIVEN a model
    version, payload, manifest_json = _artifact()

    # WHEN it is published
    returned = model_store.publish(version, payload, manifest_json)

    # THEN the stored pointer is the returned one
    assert model_store.read_pointer() == returned


def test_published_objects_carry_content_types_and_the_payload_hash(model_store, s3_client, bucket):
    # GIVEN a published model
    version, payload, manifest_json = _artifact()
    pointer = model_store.publish(version, payload, manifest_json)

    # WHEN its objects' headers are read
    payload_head = s3_client.head_object(Bucket=bucket, Key=pointer.payload_key)
    manifest_head = s3_client.head_object(Bucket=bucket, Key=pointer.manifest_key)
    pointer_head = s3_client.head_object(Bucket=bucket, Key="models/current.json")

    # THEN each has its content type and the artifacts carry the payload's sha256
    assert payload_head["ContentType"] == "application/octet-stream"
    assert payload_head["Metadata"] == {"sha256": pointer.sha256}
    assert manifest_head["ContentType"] == "application/json"
    assert manifest_head["Metadata"] == {"payload-sha256": pointer.sha256}
    assert pointer_head["ContentType"] == "application/json"


def test_publish_refuses_a_manifest_of_another_payload(model_store, s3_client, bucket):
    # GIVEN a payload and the manifest of a different model
    version, payload, _ = _artifact()
    other_model, _ = make_model(np.eye(4, 2))
    other_manifest = other_model.manifest.model_copy(update={"version": version})

    # WHEN they are published together
    # THEN nothing is written: no reader can ever see the mismatch
    with pytest.raises(ModelIntegrityError):
        model_store.publish(version, payload, other_manifest.model_dump_json().encode())

    assert _keys(s3_client, bucket) == []


def test_pointer_of_a_store_never_published_to_is_none(model_store):
    # GIVEN an empty bucket
    # WHEN the pointer is read
    pointer = model_store.read_pointer()

    # THEN no model is serving
    assert pointer is None


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"version": "v1"}', b"\xff\xfe"],
    ids=["not-json", "missing-fields", "not-utf8"],
)
def test_pointer_that_is_not_a_pointer_raises_integrity_error(model_store, s3_client, bucket, body):
    # GIVEN a pointer object with a body that is not a valid pointer
    s3_client.put_object(Bucket=bucket, Key="models/current.json", Body=body)

    # WHEN it is read
    # THEN the model is reported unusable rather than absent
    with pytest.raises(ModelIntegrityError):
        model_store.read_pointer()


def test_reading_a_missing_object_raises_model_not_found(model_store):
    # GIVEN an empty bucket
    # WHEN an artifact that does not exist is read
    # THEN it is reported as not found
    with pytest.raises(ModelNotFoundError, match="models/v0/model.npz"):
        model_store.read_object("models/v0/model.npz")


# ------------------------------------------------------------------------- archive ---


def test_archive_yields_the_requested_days_in_order_and_keys_in_order(archive):
    # GIVEN objects on three consecutive days, written out of key order
    archive.write_lines(date(2026, 11, 2), [b"day2-b"], "b.json")
    archive.write_lines(date(2026, 11, 2), [b"day2-a1", b"day2-a2"], "a.json")
    archive.write_lines(date(2026, 11, 1), [b"day1"], "x.json")
    archive.write_lines(date(2026, 11, 3), [b"day3"], "x.json")

    # WHEN the first two days are read
    lines = list(archive.read_lines(date(2026, 11, 1), date(2026, 11, 2)))

    # THEN days come in calendar order, objects in key order, and the third day is left out
    assert lines == [b"day1", b"day2-a1", b"day2-a2", b"day2-b"]


def test_archive_reads_a_day_of_more_objects_than_one_listing_page(archive, s3_client, bucket):
    # GIVEN one day holding more tiny objects than a single listing returns
    for number in range(MORE_THAN_ONE_PAGE):
        s3_client.put_object(
            Bucket=bucket, Key=f"events/dt=2026-11-01/part-{number:05d}", Body=b"%d\n" % number
        )

    # WHEN the day is read
    lines = list(archive.read_lines(DAY, DAY))

    # THEN every object contributed its line, in key order
    assert lines == [b"%d" % number for number in range(MORE_THAN_ONE_PAGE)]


def test_archive_decompresses_gzip_objects(archive, s3_client, bucket):
    # GIVEN a gzip-compressed object as Firehose writes with compression on
    body = gzip.compress(b'{"event_id": "e1"}\n{"event_id": "e2"}\n')
    s3_client.put_object(Bucket=bucket, Key="events/dt=2026-11-01/part-1.gz", Body=body)

    # WHEN the day is read
    lines = list(archive.read_lines(DAY, DAY))

    # THEN the lines are the decompressed records
    assert lines == [b'{"event_id": "e1"}', b'{"event_id": "e2"}']


def test_archive_skips_blank_lines(archive, s3_client, bucket):
    # GIVEN an object with empty and whitespace-only lines and Windows line endings
    body = b'{"a": 1}\r\n\n   \n{"b": 2}'
    s3_client.put_object(Bucket=bucket, Key="events/dt=2026-11-01/part-1", Body=body)

    # WHEN the day is read
    lines = list(archive.read_lines(DAY, DAY))

    # THEN only the records come out
    assert lines == [b'{"a": 1}', b'{"b": 2}']


def test_archive_does_not_read_a_day_whose_name_extends_another(archive):
    # GIVEN objects of 2026-11-01 and a look-alike folder that merely starts the same way
    archive.write_lines(DAY, [b"kept"], "x.json")
    archive.write_lines(date(2026, 11, 10), [b"other day"], "x.json")

    # WHEN only 2026-11-01 is read
    lines = list(archive.read_lines(DAY, DAY))

    # THEN nothing of 2026-11-10 leaks in
    assert lines == [b"kept"]


def test_write_lines_returns_the_day_folder_key(archive):
    # GIVEN an archive under the default prefix
    # WHEN an object is written
    key = archive.write_lines(DAY, [b"line"], "batch-1.json")

    # THEN it lands in the day's folder under its name
    assert key == "events/dt=2026-11-01/batch-1.json"


def test_write_lines_compresses_a_gz_name(archive, s3_client, bucket):
    # GIVEN lines to archive under a .gz name
    # WHEN they are written
    key = archive.write_lines(DAY, [b"one", b"two"], "batch-1.gz")

    # THEN the object is gzip of the newline-terminated lines
    body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert gzip.decompress(body) == b"one\ntwo\n"


def test_write_lines_refuses_a_line_with_a_line_break(archive, s3_client, bucket):
    # GIVEN a record that holds a newline, which would split it in two on reading
    # WHEN it is written
    # THEN it is refused and nothing is stored
    with pytest.raises(ValueError, match="line break"):
        archive.write_lines(DAY, [b"half\nhalf"], "batch-1.json")

    assert _keys(s3_client, bucket) == []


def test_reading_a_reversed_day_range_is_an_error(archive):
    # GIVEN an archive
    # WHEN the last day is before the first
    # THEN the range is refused instead of silently reading nothing
    with pytest.raises(ValueError, match="before"):
        list(archive.read_lines(date(2026, 11, 2), date(2026, 11, 1)))


# ----------------------------------------------------------------------- catalogue ---


def test_catalogue_round_trips(catalog):
    # GIVEN catalogue entries with and without optional fields
    items = [
        CatalogItem(item_id="i1", title="First", categories=("books", "new"), available=True),
        CatalogItem(item_id="i2", available=False),
    ]

    # WHEN they are written and read back
    catalog.write_catalog(items)
    read = catalog.read_catalog()

    # THEN the same entries come back in the same order
    assert read == items


def test_missing_catalogue_is_empty(catalog):
    # GIVEN a bucket without a catalogue object
    # WHEN the catalogue is read
    items = catalog.read_catalog()

    # THEN there are no entries
    assert items == []


def test_bad_catalogue_line_raises_catalog_error_with_its_line_number(catalog, s3_client, bucket):
    # GIVEN a catalogue whose second line lacks the item id
    body = b'{"item_id": "i1"}\n{"title": "no id"}\n'
    s3_client.put_object(Bucket=bucket, Key="catalog/items.jsonl", Body=body)

    # WHEN it is read
    # THEN the error names the line and is a ValueError
    with pytest.raises(CatalogError, match="line 2") as raised:
        catalog.read_catalog()

    assert isinstance(raised.value, ValueError)
