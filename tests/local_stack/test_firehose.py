"""The delivery stream emulation archives the stream as Firehose does: NDJSON by day."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from botocore.client import BaseClient

from local_stack.firehose import FirehoseEmulator
from tests.local_stack.helpers import wait_for

pytestmark = pytest.mark.integration

CATCH_UP_TIMEOUT_S = 20.0


class Archive:
    """A fresh stream and archive bucket per test."""

    def __init__(self, kinesis: BaseClient, s3: BaseClient) -> None:
        self.kinesis = kinesis
        self.s3 = s3
        suffix = uuid.uuid4().hex[:12]
        self.stream_name = f"stream-{suffix}"
        self.bucket = f"archive-{suffix}"
        kinesis.create_stream(StreamName=self.stream_name, ShardCount=2)
        kinesis.get_waiter("stream_exists").wait(
            StreamName=self.stream_name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
        )
        s3.create_bucket(Bucket=self.bucket)
        self.emulators: list[FirehoseEmulator] = []

    def start(self, **options: Any) -> FirehoseEmulator:
        emulator = FirehoseEmulator(
            self.kinesis,
            self.stream_name,
            self.s3,
            self.bucket,
            prefix="events/",
            delivery_stream_name="archive-test",
            **options,
        )
        emulator.start()
        self.emulators.append(emulator)
        return emulator

    def put(self, *payloads: bytes) -> None:
        for index, payload in enumerate(payloads):
            self.kinesis.put_record(
                StreamName=self.stream_name, Data=payload, PartitionKey=f"user-{index}"
            )

    def object_keys(self) -> list[str]:
        response = self.s3.list_objects_v2(Bucket=self.bucket)
        return sorted(entry["Key"] for entry in response.get("Contents", []))

    def body(self, key: str) -> bytes:
        data: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return data

    def close(self) -> None:
        for emulator in self.emulators:
            emulator.stop()


@pytest.fixture
def archive(kinesis: BaseClient, s3: BaseClient) -> Iterator[Archive]:
    archive = Archive(kinesis, s3)
    yield archive
    archive.close()


def _today_or_around_midnight(before: datetime) -> set[date]:
    return {before.date(), datetime.now(UTC).date()}


def test_records_are_archived_as_ndjson_in_the_day_folder(archive: Archive) -> None:
    # GIVEN a running archive and three JSON records put on a two-shard stream
    emulator = archive.start()
    before = datetime.now(UTC)
    payloads = [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}']
    archive.put(*payloads)

    # WHEN it catches up
    emulator.wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN one object under events/dt=<UTC day>/ holds each record followed by a newline
    (key,) = archive.object_keys()
    folder, name = key.rsplit("/", 1)
    assert folder in {f"events/dt={day.isoformat()}" for day in _today_or_around_midnight(before)}
    assert name.startswith("archive-test-1-")
    assert sorted(archive.body(key).splitlines(keepends=True)) == [p + b"\n" for p in payloads]


def test_buffer_is_flushed_when_it_reaches_the_record_limit(archive: Archive) -> None:
    # GIVEN an archive buffering two records at most, for up to a minute
    emulator = archive.start(buffer_max_records=2, buffer_interval_s=60)

    # WHEN four records are put
    archive.put(b'{"n": 1}', b'{"n": 2}', b'{"n": 3}', b'{"n": 4}')

    # THEN two objects of two lines appear without waiting for the interval
    assert wait_for(lambda: len(archive.object_keys()) == 2)
    assert [archive.body(key).count(b"\n") for key in archive.object_keys()] == [2, 2]
    assert emulator.stats.records_delivered == 4


def test_buffer_is_flushed_when_its_oldest_record_has_waited_the_interval(
    archive: Archive,
) -> None:
    # GIVEN an archive with a short interval and a large record limit
    archive.start(buffer_max_records=1000, buffer_interval_s=0.2)

    # WHEN one record is put
    archive.put(b'{"n": 1}')

    # THEN it is archived on its own once the interval has passed
    assert wait_for(lambda: len(archive.object_keys()) == 1)


def test_records_put_before_start_are_not_archived_from_latest(archive: Archive) -> None:
    # GIVEN a record put before the archive starts at LATEST
    archive.put(b'{"when": "before"}')
    emulator = archive.start()

    # WHEN another record is put and the archive catches up
    archive.put(b'{"when": "after"}')
    emulator.wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN only the later one is archived
    (key,) = archive.object_keys()
    assert archive.body(key) == b'{"when": "after"}\n'


def test_stop_delivers_the_records_still_buffered(archive: Archive) -> None:
    # GIVEN an archive that has read a record but would buffer it for a minute
    emulator = archive.start(buffer_interval_s=60)
    archive.put(b'{"n": 1}')
    assert wait_for(lambda: emulator.stats.records_read == 1)

    # WHEN it stops
    emulator.stop()

    # THEN the record is archived
    (key,) = archive.object_keys()
    assert archive.body(key) == b'{"n": 1}\n'


def test_gzip_compression_writes_gz_objects(archive: Archive) -> None:
    # GIVEN an archive configured like CompressionFormat GZIP
    emulator = archive.start(compress=True)

    # WHEN a record is archived
    archive.put(b'{"n": 1}')
    emulator.wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN the object's name ends in .gz and it decompresses to the NDJSON line
    (key,) = archive.object_keys()
    assert key.endswith(".gz")
    assert gzip.decompress(archive.body(key)) == b'{"n": 1}\n'


def test_record_with_a_line_break_is_archived_byte_for_byte(archive: Archive) -> None:
    # GIVEN a record that holds a line break, which Firehose copies unchanged
    emulator = archive.start()
    archive.put(b'{"n":\n1}')

    # WHEN it is archived
    emulator.wait_until_caught_up(CATCH_UP_TIMEOUT_S)

    # THEN the object holds its bytes followed by the delimiter
    (key,) = archive.object_keys()
    assert archive.body(key) == b'{"n":\n1}\n'
