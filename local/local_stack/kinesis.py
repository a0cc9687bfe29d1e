"""Lambda's Kinesis event source mapping, emulated with one poller thread per shard.

What it reproduces, because the ingest handler's correctness depends on it:

- Events shaped exactly as Lambda delivers them: base64 ``data``, ``eventID`` of
  ``<shardId>:<sequenceNumber>``, the stream ARN, arrival times in epoch seconds.
- Batching: up to ``BatchSize`` records and 6 MB, waiting up to
  ``MaximumBatchingWindowInSeconds`` for a batch to fill.
- Checkpointing: with ``ReportBatchItemFailures``, the records before the lowest reported
  sequence number are done and the rest of the batch is retried, so records after a failed
  one are delivered again (at least once). An empty response is a success; a response that
  names a sequence number outside the batch, or is malformed, fails the whole batch.
- Errors: a raised error fails the whole batch; with ``BisectBatchOnFunctionError`` the
  batch is split in halves, which are retried separately without using up retries.
- Giving up: after ``MaximumRetryAttempts`` retries, or for records older than
  ``MaximumRecordAgeInSeconds``, a record of the batch (shard, sequence numbers, arrival
  times; not the data) goes to the on-failure destination and the shard moves on.

The poller keeps the records after its checkpoint in memory, so a retry does not read the
stream again; what it delivers is the same either way.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.client import BaseClient

from local_stack.lifecycle import StartStop
from local_stack.runner import FunctionError, Invocable

logger = logging.getLogger(__name__)

STARTING_POSITIONS = ("LATEST", "TRIM_HORIZON")
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"

RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"

# Lambda's synchronous invocation payload limit; a batch is cut before it.
MAX_BATCH_PAYLOAD_BYTES = 6 * 1024 * 1024

# GetRecords returns at most this many records per call.
_GET_RECORDS_LIMIT = 10_000
# Records read ahead of the checkpoint, per shard; reading stops there until some are done.
_READ_AHEAD_RECORDS = 20_000
_ERROR_BACKOFF_S = 1.0
_JOIN_GRACE_S = 5.0

# The SAM Kinesis event properties this emulation does not implement; a template using one
# of them behaves differently locally.
_UNSUPPORTED_PROPERTIES = (
    "FilterCriteria",
    "ParallelizationFactor",
    "TumblingWindowInSeconds",
    "StartingPositionTimestamp",
)

OnFailure = Callable[[dict[str, Any]], None]


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


@dataclass(frozen=True)
class KinesisEventSettings:
    """The event source mapping settings of a function's ``Kinesis`` event.

    Attributes
    ----------
    batch_size : int
        Most records per invocation (``BatchSize``, 1 to 10 000).
    maximum_batching_window_s : float
        Seconds to wait for a batch to fill (``MaximumBatchingWindowInSeconds``).
    maximum_retry_attempts : int
        Retries of a failed batch before it is given up; -1 retries until the records
        are too old (``MaximumRetryAttempts``).
    maximum_record_age_s : float
        Age after which records are given up without an invocation; -1 never
        (``MaximumRecordAgeInSeconds``).
    bisect_batch_on_function_error : bool
        Split a failed batch in halves (``BisectBatchOnFunctionError``).
    report_batch_item_failures : bool
        Read the handler's ``batchItemFailures`` (``FunctionResponseTypes``).
    starting_position : str
        ``LATEST`` or ``TRIM_HORIZON`` (``StartingPosition``).
    """

    batch_size: int = 100
    maximum_batching_window_s: float = 0.0
    maximum_retry_attempts: int = -1
    maximum_record_age_s: float = -1
    bisect_batch_on_function_error: bool = False
    report_batch_item_failures: bool = False
    starting_position: str = "LATEST"

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= _GET_RECORDS_LIMIT:
            raise ValueError(f"BatchSize must be 1 to {_GET_RECORDS_LIMIT}: {self.batch_size}")
        if self.maximum_batching_window_s < 0:
            raise ValueError("MaximumBatchingWindowInSeconds must not be negative")
        if self.maximum_retry_attempts < -1:
            raise ValueError("MaximumRetryAttempts must be -1 or more")
        if self.maximum_record_age_s < -1:
            raise ValueError("MaximumRecordAgeInSeconds must be -1 or more")
        if self.starting_position not in STARTING_POSITIONS:
            raise ValueError(
                f"StartingPosition {self.starting_position!r} is not one of {STARTING_POSITIONS}"
            )

    @classmethod
    def from_event_properties(cls, properties: Mapping[str, Any]) -> KinesisEventSettings:
        """Read the settings from a SAM ``Kinesis`` event's ``Properties``.

        Parameters
        ----------
        properties : Mapping[str, Any]
            The event's properties with intrinsic functions already resolved; absent
            settings take Lambda's defaults.

        Raises
        ------
        ValueError
            If a setting is out of range or the starting position is not supported.
        """
        for name in _UNSUPPORTED_PROPERTIES:
            if name in properties:
                logger.warning("Kinesis event property %s is not emulated locally", name)

        response_types = properties.get("FunctionResponseTypes") or []
        return cls(
            batch_size=int(properties.get("BatchSize", 100)),
            maximum_batching_window_s=float(properties.get("MaximumBatchingWindowInSeconds", 0)),
            maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
            maximum_record_age_s=float(properties.get("MaximumRecordAgeInSeconds", -1)),
            bisect_batch_on_function_error=_as_bool(
                properties.get("BisectBatchOnFunctionError", False)
            ),
            report_batch_item_failures=REPORT_BATCH_ITEM_FAILURES in response_types,
            starting_position=str(properties.get("StartingPosition", "LATEST")),
        )


class SqsDestination:
    """An on-failure destination that sends each failure record to an SQS queue as JSON.

    Parameters
    ----------
    client : botocore.client.BaseClient
        An SQS client.
    queue_url : str
        The destination queue.
    """

    def __init__(self, client: BaseClient, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    def __call__(self, message: dict[str, Any]) -> None:
        """Send one failure record; an error propagates so the poller tries again."""
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message))


# ------------------------------------------------------------------ reading a shard ---


def list_shard_ids(client: BaseClient, stream_name: str) -> list[str]:
    """Return the ids of every shard of a stream, following ListShards' pages."""
    shard_ids: list[str] = []
    request: dict[str, Any] = {"StreamName": stream_name}
    while True:
        response = client.list_shards(**request)
        shard_ids.extend(shard["ShardId"] for shard in response["Shards"])

        token = response.get("NextToken")
        if not token:
            return shard_ids
        # A request with a NextToken must not name the stream again.
        request = {"NextToken": token}


def stream_arn_of(client: BaseClient, stream_name: str) -> str:
    """Return the ARN of a stream."""
    summary = client.describe_stream_summary(StreamName=stream_name)
    return str(summary["StreamDescriptionSummary"]["StreamARN"])


class ShardReader:
    """Reads one shard in order through its own iterator.

    The iterator is taken when the reader is created, so with ``LATEST`` every record put
    after that moment is read, none before.

    Parameters
    ----------
    client : botocore.client.BaseClient
        A Kinesis client.
    stream_name, shard_id : str
        The shard to read.
    starting_position : str
        ``LATEST`` or ``TRIM_HORIZON``.
    """

    def __init__(
        self, client: BaseClient, stream_name: str, shard_id: str, starting_position: str
    ) -> None:
        if starting_position not in STARTING_POSITIONS:
            raise ValueError(f"starting position {starting_position!r} is not supported")

        self._client = client
        self.stream_name = stream_name
        self.shard_id = shard_id
        self._starting_position = starting_position
        self.last_sequence_number: str | None = None
        self._iterator: str | None = self._new_iterator()

    @property
    def ended(self) -> bool:
        """Whether the shard is closed and every record of it has been read."""
        return self._iterator is None

    def _new_iterator(self) -> str:
        request: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": self.shard_id}
        if self.last_sequence_number is None:
            request["ShardIteratorType"] = self._starting_position
        else:
            request["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            request["StartingSequenceNumber"] = self.last_sequence_number

        return str(self._client.get_shard_iterator(**request)["ShardIterator"])

    def read(self, limit: int = _GET_RECORDS_LIMIT) -> list[dict[str, Any]]:
        """Return the next records (GetRecords' shape), empty when there are none yet."""
        if self._iterator is None:
            return []

        try:
            response = self._client.get_records(ShardIterator=self._iterator, Limit=limit)
        except self._client.exceptions.ExpiredIteratorException:
            # Iterators expire after five minutes; continue after the last record read.
            self._iterator = self._new_iterator()
            response = self._client.get_records(ShardIterator=self._iterator, Limit=limit)

        records: list[dict[str, Any]] = response["Records"]
        if records:
            self.last_sequence_number = records[-1]["SequenceNumber"]
        self._iterator = response.get("NextShardIterator")
        return records


# -------------------------------------------------------------------- the mapping ---


@dataclass(frozen=True)
class MappingStats:
    """Counters of an event source mapping, summed over its shards.

    Attributes
    ----------
    batches : int
        Invocations of the function.
    records : int
        Records delivered, counting every redelivery.
    records_succeeded : int
        Records checkpointed after a successful invocation.
    retries : int
        Retries of a failed batch or of its remainder after a partial failure.
    function_errors : int
        Invocations that raised, timed out or answered with a malformed response.
    bisections : int
        Failed batches split in halves.
    failures_sent : int
        Failure records sent to the on-failure destination.
    records_discarded : int
        Records given up, with or without a destination.
    """

    batches: int = 0
    records: int = 0
    records_succeeded: int = 0
    retries: int = 0
    function_errors: int = 0
    bisections: int = 0
    failures_sent: int = 0
    records_discarded: int = 0


@dataclass(frozen=True)
class _Record:
    sequence_number: int
    arrival: float  # Epoch seconds, as in the event.
    fetched_at: float  # time.monotonic() when read from the stream.
    size: int  # Bytes it adds to the event's JSON.
    event_record: dict[str, Any]


@dataclass
class _Batch:
    """Records delivered together, with what happened to them so far."""

    records: list[_Record]
    retries: int = 0
    invocations: int = 0
    last_was_function_error: bool = False
    # Set once the batch is given up, so a failed send to the destination is retried
    # without invoking the function again.
    give_up_condition: str | None = None


class _MalformedResponse(ValueError):
    """The handler's response cannot be read as a batch item failure report."""


def _iso_millis(epoch_seconds: float) -> str:
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class _Counters:
    lock: threading.Lock = field(default_factory=threading.Lock)
    values: dict[str, int] = field(default_factory=lambda: asdict(MappingStats()))

    def add(self, **amounts: int) -> None:
        with self.lock:
            for name, amount in amounts.items():
                self.values[name] += amount

    def snapshot(self) -> MappingStats:
        with self.lock:
            return MappingStats(**self.values)


class EventSourceMapping(StartStop):
    """Feeds a stream's records to a function the way Lambda's Kinesis mapping does.

    Parameters
    ----------
    kinesis_client : botocore.client.BaseClient
        A Kinesis client of the local endpoint.
    stream_name : str
        The event source.
    runner : Invocable
        The function, e.g. a :class:`local_stack.runner.FunctionRunner`.
    settings : KinesisEventSettings
        The mapping's settings, e.g. from the template's Kinesis event.
    on_failure : callable, optional
        Receives each failure record as a dict, e.g. a :class:`SqsDestination`. Without
        one, given-up batches are logged and dropped, as Lambda drops them.
    poll_interval_s : float
        Pause between reads of an idle shard.
    retry_delay_s : float
        Pause before the first retry of a failed batch; it doubles with each retry up to
        ``max_retry_delay_s``.
    max_retry_delay_s : float
        Longest pause between retries.

    Notes
    -----
    Shards are discovered once, at start: the mapping does not follow a resharding.
    Every shard calls the same runner, which serializes invocations; Lambda would run one
    per shard concurrently.
    """

    def __init__(
        self,
        kinesis_client: BaseClient,
        stream_name: str,
        runner: Invocable,
        settings: KinesisEventSettings,
        *,
        on_failure: OnFailure | None = None,
        poll_interval_s: float = 0.05,
        retry_delay_s: float = 0.05,
        max_retry_delay_s: float = 1.0,
    ) -> None:
        self._client = kinesis_client
        self.stream_name = stream_name
        self.runner = runner
        self.settings = settings
        self.on_failure = on_failure
        self.poll_interval_s = poll_interval_s
        self.retry_delay_s = retry_delay_s
        self.max_retry_delay_s = max_retry_delay_s

        self.stream_arn = ""
        self.region = ""
        self.invoke_identity_arn = ""
        self._counters = _Counters()
        self._stop = threading.Event()
        self._progress = threading.Condition()
        self._pollers: list[_ShardPoller] = []

    @property
    def stats(self) -> MappingStats:
        """A snapshot of the counters."""
        return self._counters.snapshot()

    @property
    def shard_ids(self) -> list[str]:
        """Shards being polled."""
        return [poller.shard_id for poller in self._pollers]

    @property
    def running(self) -> bool:
        """Whether any poller thread is alive."""
        return any(poller.thread.is_alive() for poller in self._pollers)

    def start(self) -> None:
        """Discover the shards, take their iterators and start one poller thread each.

        The iterators are taken before this returns, so with ``LATEST`` every record put
        afterwards is delivered.

        Raises
        ------
        RuntimeError
            If the mapping was started before.
        """
        if self._pollers:
            raise RuntimeError("the event source mapping was started already")

        self.stream_arn = stream_arn_of(self._client, self.stream_name)
        _, _, _, self.region, account_id, _ = self.stream_arn.split(":", 5)
        self.invoke_identity_arn = f"arn:aws:iam::{account_id}:role/{self.runner.function_name}"

        for shard_id in list_shard_ids(self._client, self.stream_name):
            reader = ShardReader(
                self._client, self.stream_name, shard_id, self.settings.starting_position
            )
            self._pollers.append(_ShardPoller(self, reader))
        for poller in self._pollers:
            poller.thread.start()

        logger.info(
            "polling %d shards of %s for %s",
            len(self._pollers),
            self.stream_name,
            self.runner.logical_id,
        )

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop polling and wait for the threads to end.

        Parameters
        ----------
        timeout_s : float, optional
            How long to wait for an invocation in flight; defaults to the runner's timeout
            (or 60 s) plus a few seconds.
        """
        self._stop.set()
        with self._progress:
            self._progress.notify_all()

        wait = timeout_s
        if wait is None:
            wait = float(getattr(self.runner, "timeout_s", 60.0)) + _JOIN_GRACE_S
        deadline = time.monotonic() + wait
        for poller in self._pollers:
            if poller.thread.ident is not None:
                poller.thread.join(max(0.0, deadline - time.monotonic()))
            if poller.thread.is_alive():
                logger.warning("poller of %s did not stop within %.0f s", poller.shard_id, wait)

    def wait_until_caught_up(self, timeout_s: float = 30.0) -> None:
        """Block until every shard has processed each record put before this call.

        A shard has caught up once a read that started after this call found nothing new
        and nothing of it was left to deliver, retry or give up.

        Raises
        ------
        TimeoutError
            If some shard has not caught up within ``timeout_s``, e.g. because its
            function keeps failing and retries are unlimited.
        RuntimeError
            If the mapping is not running.
        """
        if not self._pollers or self._stop.is_set():
            raise RuntimeError("the event source mapping is not running")

        since = time.monotonic()
        deadline = since + timeout_s
        with self._progress:
            while True:
                behind = [p.shard_id for p in self._pollers if p.caught_up_at < since]
                if not behind:
                    return

                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"shards {behind} did not catch up within {timeout_s} s")
                self._progress.wait(remaining)

    def _mark_caught_up(self, poller: _ShardPoller, read_started: float) -> None:
        with self._progress:
            poller.caught_up_at = read_started
            self._progress.notify_all()


class _ShardPoller:
    """Delivers one shard's records: read, batch, invoke, checkpoint, retry, give up."""

    def __init__(self, mapping: EventSourceMapping, reader: ShardReader) -> None:
        self._mapping = mapping
        self._settings = mapping.settings
        self._reader = reader
        self.shard_id = reader.shard_id
        self.caught_up_at = float("-inf")
        self.checkpoint: int | None = None

        # Records read but not yet in a batch, and batches not yet done; the batches at
        # the front are always the oldest records, so the checkpoint only moves forward.
        self._buffer: deque[_Record] = deque()
        self._work: deque[_Batch] = deque()
        self._not_before = 0.0

        self.thread = threading.Thread(
            target=self._run, name=f"esm-{reader.stream_name}-{self.shard_id}", daemon=True
        )

    def _run(self) -> None:
        stop = self._mapping._stop
        while not stop.is_set():
            try:
                busy = self._step()
            except Exception:
                if stop.is_set():
                    return  # The runner or moto went away because the stack is stopping.
                logger.exception("poller of shard %s failed; trying again", self.shard_id)
                stop.wait(_ERROR_BACKOFF_S)
                continue

            if not busy:
                stop.wait(self._mapping.poll_interval_s)

    def _step(self) -> bool:
        """Read once and process at most one batch; True if there is more to do at once."""
        read_started = time.monotonic()
        read_count = self._read()

        if not self._work:
            batch = self._take_batch()
            if batch is not None:
                self._work.append(batch)

        if self._work:
            if time.monotonic() < self._not_before:
                return False
            self._process(self._work[0])
            return True

        if read_count == 0 and not self._buffer:
            self._mapping._mark_caught_up(self, read_started)
        return read_count > 0

    def _read(self) -> int:
        if len(self._buffer) >= _READ_AHEAD_RECORDS:
            return 0

        records = self._reader.read()
        now = time.monotonic()
        for record in records:
            event_record = self._event_record(record)
            self._buffer.append(
                _Record(
                    sequence_number=int(record["SequenceNumber"]),
                    arrival=event_record["kinesis"]["approximateArrivalTimestamp"],
                    fetched_at=now,
                    size=len(json.dumps(event_record)),
                    event_record=event_record,
                )
            )
        return len(records)

    def _event_record(self, record: dict[str, Any]) -> dict[str, Any]:
        sequence_number = str(record["SequenceNumber"])
        # Kinesis keeps arrival times to the millisecond; so does the event.
        arrival = round(record["ApproximateArrivalTimestamp"].timestamp(), 3)
        return {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": record["PartitionKey"],
                "sequenceNumber": sequence_number,
                "data": base64.b64encode(record["Data"]).decode("ascii"),
                "approximateArrivalTimestamp": arrival,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{self.shard_id}:{sequence_number}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": self._mapping.invoke_identity_arn,
            "awsRegion": self._mapping.region,
            "eventSourceARN": self._mapping.stream_arn,
        }

    def _take_batch(self) -> _Batch | None:
        """Cut the next batch from the buffer once it is full or has waited long enough."""
        if not self._buffer:
            return None

        records: list[_Record] = []
        payload = 0
        for record in self._buffer:
            if len(records) == self._settings.batch_size:
                break
            if records and payload + record.size > MAX_BATCH_PAYLOAD_BYTES:
                break
            records.append(record)
            payload += record.size

        full = len(records) < len(self._buffer) or len(records) == self._settings.batch_size
        waited = time.monotonic() - self._buffer[0].fetched_at
        if not full and waited < self._settings.maximum_batching_window_s:
            return None

        for _ in records:
            self._buffer.popleft()
        return _Batch(records)

    def _process(self, batch: _Batch) -> None:
        if batch.give_up_condition is not None:
            self._give_up(batch, batch.give_up_condition)
            return

        expired = self._expired_prefix(batch)
        if expired:
            too_old = _Batch(batch.records[:expired], batch.retries, batch.invocations)
            too_old.last_was_function_error = batch.last_was_function_error
            self._work.popleft()
            if expired < len(batch.records):
                self._work.appendleft(
                    _Batch(batch.records[expired:], batch.retries, batch.invocations)
                )
            self._work.appendleft(too_old)
            self._give_up(too_old, RECORD_AGE_EXCEEDED)
            return

        event = {"Records": [record.event_record for record in batch.records]}
        batch.invocations += 1
        self._mapping._counters.add(batches=1, records=len(batch.records))
        logger.debug(
            "invoking %s with %d records of %s from %s",
            self._mapping.runner.logical_id,
            len(batch.records),
            self.shard_id,
            batch.records[0].sequence_number,
        )

        try:
            response = self._mapping.runner.invoke(event)
        except FunctionError as error:
            logger.warning(
                "%s failed on %d records of %s: %s",
                self._mapping.runner.logical_id,
                len(batch.records),
                self.shard_id,
                error,
            )
            self._after_function_error(batch)
            return

        try:
            failed_at = self._first_failure(batch, response)
        except _MalformedResponse as error:
            logger.warning("%s answered a malformed response: %s", self.shard_id, error)
            self._after_function_error(batch)
            return

        if failed_at is None:
            self._work.popleft()
            self._commit(batch.records)
            return

        self._commit(batch.records[:failed_at])
        remainder = _Batch(batch.records[failed_at:], batch.retries, batch.invocations)
        self._work[0] = remainder
        logger.info(
            "%s reported a failure at %s of %s; retrying from there",
            self._mapping.runner.logical_id,
            remainder.records[0].sequence_number,
            self.shard_id,
        )
        self._retry_or_give_up(remainder)

    def _expired_prefix(self, batch: _Batch) -> int:
        """Number of leading records older than MaximumRecordAgeInSeconds."""
        maximum_age = self._settings.maximum_record_age_s
        if maximum_age < 0:
            return 0

        oldest_allowed = time.time() - maximum_age
        count = 0
        for record in batch.records:
            if record.arrival >= oldest_allowed:
                break
            count += 1
        return count

    def _first_failure(self, batch: _Batch, response: Any) -> int | None:
        """Index in the batch of the lowest reported failure, or None for a success."""
        if not self._settings.report_batch_item_failures or response is None:
            return None
        if not isinstance(response, dict):
            raise _MalformedResponse(f"expected an object, got {type(response).__name__}")

        failures = response.get("batchItemFailures")
        if failures is None:
            return None
        if not isinstance(failures, list):
            raise _MalformedResponse("batchItemFailures is not a list")

        positions = {str(record.sequence_number): i for i, record in enumerate(batch.records)}
        failed: list[int] = []
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not isinstance(identifier, str) or identifier not in positions:
                raise _MalformedResponse(f"itemIdentifier {identifier!r} is not in the batch")
            failed.append(positions[identifier])

        return min(failed) if failed else None

    def _after_function_error(self, batch: _Batch) -> None:
        self._mapping._counters.add(function_errors=1)
        batch.last_was_function_error = True

        if self._settings.bisect_batch_on_function_error and len(batch.records) > 1:
            # Splitting does not use up a retry: each half keeps the batch's count.
            middle = len(batch.records) // 2
            first = _Batch(batch.records[:middle], batch.retries)
            second = _Batch(batch.records[middle:], batch.retries)
            self._work.popleft()
            self._work.appendleft(second)
            self._work.appendleft(first)
            self._mapping._counters.add(bisections=1)
            return

        self._retry_or_give_up(batch)

    def _retry_or_give_up(self, batch: _Batch) -> None:
        limit = self._settings.maximum_retry_attempts
        if 0 <= limit <= batch.retries:
            self._give_up(batch, RETRY_ATTEMPTS_EXHAUSTED)
            return

        batch.retries += 1
        self._mapping._counters.add(retries=1)
        delay = self._mapping.retry_delay_s * 2 ** (batch.retries - 1)
        self._not_before = time.monotonic() + min(delay, self._mapping.max_retry_delay_s)

    def _give_up(self, batch: _Batch, condition: str) -> None:
        batch.give_up_condition = condition
        message = self._failure_message(batch, condition)

        on_failure = self._mapping.on_failure
        if on_failure is None:
            logger.warning(
                "dropping %d records of %s (%s) with no on-failure destination",
                len(batch.records),
                self.shard_id,
                condition,
            )
        else:
            on_failure(message)  # Raises if the send fails; the batch stays at the front.
            self._mapping._counters.add(failures_sent=1)
            logger.warning(
                "gave up %d records of %s from %s (%s); sent to the on-failure destination",
                len(batch.records),
                self.shard_id,
                batch.records[0].sequence_number,
                condition,
            )

        self._work.popleft()
        self._commit(batch.records, succeeded=False)

    def _failure_message(self, batch: _Batch, condition: str) -> dict[str, Any]:
        first, last = batch.records[0], batch.records[-1]

        response_context: dict[str, Any] = {}
        if batch.invocations:
            response_context = {"statusCode": 200, "executedVersion": "$LATEST"}
            if batch.last_was_function_error:
                response_context["functionError"] = "Unhandled"

        return {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self._mapping.runner.function_arn,
                "condition": condition,
                "approximateInvokeCount": batch.invocations,
            },
            "responseContext": response_context,
            "version": "1.0",
            "timestamp": _iso_millis(time.time()),
            "KinesisBatchInfo": {
                "shardId": self.shard_id,
                "startSequenceNumber": str(first.sequence_number),
                "endSequenceNumber": str(last.sequence_number),
                "approximateArrivalOfFirstRecord": _iso_millis(first.arrival),
                "approximateArrivalOfLastRecord": _iso_millis(last.arrival),
                "batchSize": len(batch.records),
                "streamArn": self._mapping.stream_arn,
            },
        }

    def _commit(self, records: list[_Record], *, succeeded: bool = True) -> None:
        if not records:
            return

        self.checkpoint = records[-1].sequence_number
        if succeeded:
            self._mapping._counters.add(records_succeeded=len(records))
        else:
            self._mapping._counters.add(records_discarded=len(records))
