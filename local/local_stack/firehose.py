"""The archive delivery stream (Kinesis Data Firehose) emulated: stream in, NDJSON out.

The emulation reads the event stream with its own iterators, independent of the ingest
mapping, as Firehose does. It starts at ``LATEST`` by default, which is where Firehose
starts reading a Kinesis source when the delivery stream is created; locally the stream is
created empty just before, so nothing is missed.

Like the template's delivery stream it buffers records and writes one object per flush:

- each record's bytes followed by a newline, as the ``AppendDelimiterToRecord`` processor
  does, so objects are newline-delimited JSON when producers send one JSON object each;
- under ``events/dt=YYYY-MM-DD/``, the UTC day of the oldest record in the object
  (Firehose's ``!{timestamp:yyyy-MM-dd}`` is that record's arrival time), so an object
  flushed just after midnight may hold a few records of the new day, as in AWS;
- named ``<delivery stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid>``, as Firehose names objects.

A buffer is flushed when it holds ``buffer_max_records`` records or ``buffer_max_bytes``
bytes, or when its oldest record has waited ``buffer_interval_s``. The template asks for
300 s and 64 MB; local defaults are a second and a megabyte so an archive is visible
while one watches.
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from botocore.client import BaseClient

from local_stack.kinesis import ShardReader, list_shard_ids
from local_stack.lifecycle import StartStop
from recsys.adapters.s3 import GZIP_SUFFIX, S3EventArchive

logger = logging.getLogger(__name__)

DELIMITER = b"\n"
_ERROR_BACKOFF_S = 1.0
_JOIN_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class FirehoseStats:
    """Counters of the delivery stream emulation.

    Attributes
    ----------
    records_read : int
        Records read from the stream.
    records_delivered : int
        Records written to the archive.
    objects_written : int
        Archive objects written.
    bytes_written : int
        Bytes of the objects written.
    """

    records_read: int = 0
    records_delivered: int = 0
    objects_written: int = 0
    bytes_written: int = 0


@dataclass(frozen=True)
class _Buffered:
    arrival: datetime
    data: bytes


class FirehoseEmulator(StartStop):
    """Archives every record of a stream into S3 as a Firehose delivery stream would.

    Parameters
    ----------
    kinesis_client : botocore.client.BaseClient
        A Kinesis client of the local endpoint.
    stream_name : str
        The source stream.
    s3_client : botocore.client.BaseClient
        An S3 client of the local endpoint.
    bucket : str
        The archive bucket.
    prefix : str
        Folder that holds the ``dt=YYYY-MM-DD/`` folders, e.g. ``"events/"``.
    delivery_stream_name : str
        Names the objects.
    starting_position : str
        ``LATEST`` (Firehose's behaviour) or ``TRIM_HORIZON``.
    compress : bool
        Gzip each object and end its name in ``.gz``, as ``CompressionFormat: GZIP`` does.
    buffer_interval_s : float
        Longest time a record waits in the buffer.
    buffer_max_bytes : int
        Flush once the buffer holds this many bytes.
    buffer_max_records : int
        Flush once the buffer holds this many records.
    poll_interval_s : float
        Pause between reads when the stream is idle.
    """

    def __init__(
        self,
        kinesis_client: BaseClient,
        stream_name: str,
        s3_client: BaseClient,
        bucket: str,
        *,
        prefix: str = "events/",
        delivery_stream_name: str = "archive",
        starting_position: str = "LATEST",
        compress: bool = False,
        buffer_interval_s: float = 1.0,
        buffer_max_bytes: int = 1024 * 1024,
        buffer_max_records: int = 500,
        poll_interval_s: float = 0.05,
    ) -> None:
        if buffer_interval_s <= 0 or buffer_max_bytes <= 0 or buffer_max_records <= 0:
            raise ValueError("buffering hints must be positive")

        self._kinesis = kinesis_client
        self._s3 = s3_client
        self.stream_name = stream_name
        self.bucket = bucket
        self.archive = S3EventArchive(s3_client, bucket, prefix)
        self.delivery_stream_name = delivery_stream_name
        self.starting_position = starting_position
        self.compress = compress
        self.buffer_interval_s = buffer_interval_s
        self.buffer_max_bytes = buffer_max_bytes
        self.buffer_max_records = buffer_max_records
        self.poll_interval_s = poll_interval_s

        self._readers: list[ShardReader] = []
        self._buffer: list[_Buffered] = []
        self._buffer_bytes = 0
        self._buffer_started = 0.0
        self._stats = FirehoseStats()
        self._lock = threading.Lock()
        self._progress = threading.Condition()
        self._caught_up_at = float("-inf")
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"firehose-{delivery_stream_name}", daemon=True
        )

    @property
    def stats(self) -> FirehoseStats:
        """A snapshot of the counters."""
        with self._lock:
            return self._stats

    @property
    def running(self) -> bool:
        """Whether the reader thread is alive."""
        return self._thread.is_alive()

    def start(self) -> None:
        """Take an iterator on every shard, then start reading in a thread.

        Raises
        ------
        RuntimeError
            If the emulation was started before.
        """
        if self._readers or self._thread.ident is not None:
            raise RuntimeError("the delivery stream emulation was started already")

        self._readers = [
            ShardReader(self._kinesis, self.stream_name, shard_id, self.starting_position)
            for shard_id in list_shard_ids(self._kinesis, self.stream_name)
        ]
        self._thread.start()
        logger.info(
            "archiving %s to s3://%s/%s",
            self.stream_name,
            self.bucket,
            self.archive.day_prefix(datetime.now(UTC).date()),
        )

    def stop(self) -> None:
        """Stop reading and deliver what is buffered; stopping twice does nothing more."""
        self._stop.set()
        with self._progress:
            self._progress.notify_all()

        if self._thread.ident is not None:
            self._thread.join(_JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                logger.warning("firehose reader did not stop within %.0f s", _JOIN_TIMEOUT_S)

        try:
            self.flush()
        except Exception:
            logger.exception("could not deliver the last %d buffered records", len(self._buffer))

    def flush(self) -> str | None:
        """Write the buffer to the archive now.

        Returns
        -------
        str or None
            The key of the object written, or None when the buffer was empty.

        Raises
        ------
        botocore.exceptions.ClientError
            If S3 refuses the object; the records stay buffered for the next flush.
        """
        with self._lock:
            return self._flush_locked()

    def wait_until_caught_up(self, timeout_s: float = 30.0) -> None:
        """Block until each record put before this call has been read, then flush.

        Raises
        ------
        TimeoutError
            If the reader has not caught up within ``timeout_s``.
        RuntimeError
            If the emulation is not running.
        """
        if not self.running or self._stop.is_set():
            raise RuntimeError("the delivery stream emulation is not running")

        since = time.monotonic()
        deadline = since + timeout_s
        with self._progress:
            while self._caught_up_at < since:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the archive did not catch up within {timeout_s} s")
                self._progress.wait(remaining)

        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                read_count = self._read_and_flush()
            except Exception:
                if self._stop.is_set():
                    return
                logger.exception("firehose emulation failed; trying again")
                self._stop.wait(_ERROR_BACKOFF_S)
                continue

            if read_count == 0:
                self._stop.wait(self.poll_interval_s)

    def _read_and_flush(self) -> int:
        read_started = time.monotonic()
        read_count = 0
        for reader in self._readers:
            records = reader.read()
            read_count += len(records)
            with self._lock:
                for record in records:
                    self._append(_Buffered(record["ApproximateArrivalTimestamp"], record["Data"]))

        with self._lock:
            if self._flush_due():
                self._flush_locked()

        if read_count == 0:
            with self._progress:
                self._caught_up_at = read_started
                self._progress.notify_all()
        return read_count

    def _append(self, record: _Buffered) -> None:
        if not self._buffer:
            self._buffer_started = time.monotonic()
        self._buffer.append(record)
        self._buffer_bytes += len(record.data) + len(DELIMITER)
        self._stats = _added(self._stats, records_read=1)

    def _flush_due(self) -> bool:
        if not self._buffer:
            return False

        waited = time.monotonic() - self._buffer_started
        return (
            len(self._buffer) >= self.buffer_max_records
            or self._buffer_bytes >= self.buffer_max_bytes
            or waited >= self.buffer_interval_s
        )

    def _flush_locked(self) -> str | None:
        if not self._buffer:
            return None

        oldest = min(record.arrival for record in self._buffer).astimezone(UTC)
        written_at = datetime.now(UTC)
        name = f"{self.delivery_stream_name}-1-{written_at:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}"
        if self.compress:
            name += GZIP_SUFFIX
        lines = [record.data for record in self._buffer]

        if any(DELIMITER in line for line in lines):
            # The archive adapter refuses lines with line breaks, but Firehose copies
            # records as they are; write those objects byte for byte as it would.
            logger.warning("archiving records that hold line breaks; readers will split them")
            key = f"{self.archive.day_prefix(oldest.date())}{name}"
            body = b"".join(line + DELIMITER for line in lines)
            if self.compress:
                body = gzip.compress(body, mtime=0)
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        else:
            key = self.archive.write_lines(oldest.date(), lines, name)

        self._stats = _added(
            self._stats,
            records_delivered=len(lines),
            objects_written=1,
            bytes_written=self._buffer_bytes,
        )
        logger.info("archived %d records to s3://%s/%s", len(lines), self.bucket, key)

        self._buffer = []
        self._buffer_bytes = 0
        return key


def _added(stats: FirehoseStats, **amounts: int) -> FirehoseStats:
    return replace(stats, **{name: getattr(stats, name) + n for name, n in amounts.items()})
