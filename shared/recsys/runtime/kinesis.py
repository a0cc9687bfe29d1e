"""From a Lambda Kinesis batch to grouped, idempotent user-state updates.

Powertools' :class:`BatchProcessor` walks the records; the record handler only decodes and
validates, collecting valid events by user. Then each user's events are applied with one read
and one conditional write. Outcomes per record:

- valid and applied (or already applied): acknowledged;
- permanently invalid (not base64, not JSON, wrong schema): sent to the dead-letter queue with
  the reason and acknowledged, so it never stalls the shard; without a queue it is reported
  as a batch item failure and Lambda's own retry and on-failure destination take over;
- valid but its user's write failed (lost races, throttling): the user's update is tried
  again a few times with jittered backoff (safe: the merge is idempotent); if it still fails,
  every record of that user is reported in ``batchItemFailures``, and Lambda delivers them
  again from the lowest one.
"""

from __future__ import annotations

import base64
import binascii
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from botocore.exceptions import ClientError

from recsys.erasure import outlives_deletion
from recsys.errors import InvalidEventError
from recsys.events import Event, parse_event
from recsys.ingestion import UserBatch, UserOutcome, apply_user_events, latest_sequence
from recsys.model import ItemModel
from recsys.runtime.wiring import IngestDependencies

MAX_RECORD_BYTES = 4096
USER_ATTEMPTS = 3
USER_WORKERS = 8
RETRY_BASE_DELAY_S = 0.05

# Errors that say "not now" rather than "never": retrying the same idempotent update is safe.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "SlowDown",
        "TransactionConflictException",
    }
)


@dataclass
class BatchSummary:
    """Counts of one invocation, logged and published as metrics."""

    records: int = 0
    new_events: int = 0
    duplicate_events: int = 0
    dead_lettered: int = 0
    users_written: int = 0
    users_failed: int = 0
    unknown_items: int = 0
    deleted_user_events: int = 0
    rejections: dict[str, int] = field(default_factory=dict)


def handle_kinesis_batch(
    event: dict[str, Any],
    context: Any,
    *,
    deps: IngestDependencies,
    processor: BatchProcessor,
    logger: Logger,
    metrics: Metrics,
) -> dict[str, Any]:
    """Process one Kinesis delivery; returns the partial-failure response Lambda expects."""
    batch: UserBatch[KinesisStreamRecord] = UserBatch()
    summary = BatchSummary(records=len(event.get("Records", [])))
    now = datetime.now(UTC)

    def record_handler(record: KinesisStreamRecord) -> None:
        try:
            parsed = parse_event(_record_payload(record), now=now)
        except InvalidEventError as error:
            _reject(record, error, deps=deps, summary=summary, logger=logger)
            return
        batch.add(parsed, record.kinesis.sequence_number, record)

    with processor(
        records=event.get("Records", []), handler=record_handler, lambda_context=context
    ):
        processor.process()
        _apply_by_user(batch, deps=deps, processor=processor, summary=summary, logger=logger)

    _publish(summary, metrics)
    logger.info("processed kinesis batch", **summary.__dict__)
    return dict(processor.response())


def _record_payload(record: KinesisStreamRecord) -> bytes:
    raw = record.kinesis.get("data", "")
    if not isinstance(raw, str):
        raise InvalidEventError("record: kinesis.data must be a base64 string")
    try:
        payload = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidEventError("record: kinesis.data is not valid base64") from None
    if len(payload) > MAX_RECORD_BYTES:
        raise InvalidEventError(f"record: {len(payload)} bytes exceeds {MAX_RECORD_BYTES}")
    return payload


def _reject(
    record: KinesisStreamRecord,
    error: InvalidEventError,
    *,
    deps: IngestDependencies,
    summary: BatchSummary,
    logger: Logger,
) -> None:
    field_name = error.reason.split(":")[0]
    summary.rejections[field_name] = summary.rejections.get(field_name, 0) + 1
    logger.info(
        "rejected record",
        sequence_number=record.kinesis.sequence_number,
        reason=error.reason,
        event_id=error.event_id,
    )
    if deps.dead_letters is None:
        raise error
    deps.dead_letters.send(
        {
            "reason": error.reason,
            "event_id": error.event_id,
            "sequence_number": record.kinesis.sequence_number,
            "partition_key": record.kinesis.partition_key,
            "event_source_arn": record.event_source_arn,
            "event_id_in_stream": record.event_id,
            "data": record.kinesis.get("data"),
            "rejected_at": datetime.now(UTC).isoformat(),
        }
    )
    summary.dead_lettered += 1


def _apply_by_user(
    batch: UserBatch[KinesisStreamRecord],
    *,
    deps: IngestDependencies,
    processor: BatchProcessor,
    summary: BatchSummary,
    logger: Logger,
) -> None:
    model = deps.models.current()
    try:
        deleted_at = deps.deletions.deleted_at(list(batch.events)) if deps.deletions else {}
    except Exception:  # noqa: BLE001 - without the markers no event may be applied
        logger.exception("could not read deletion markers; the batch will be redelivered")
        failure = sys.exc_info()
        for items in batch.events.values():
            summary.users_failed += 1
            for _, _, record in items:
                processor.failure_handler(record=record, exception=failure)
        return

    pending: dict[str, list[tuple[Event, str, KinesisStreamRecord]]] = {}
    for user_id, received in batch.events.items():
        items = [
            item
            for item in received
            if outlives_deletion(user_id, item[0].timestamp_ms, deleted_at)
        ]
        if len(items) < len(received):
            summary.deleted_user_events += len(received) - len(items)
            logger.info(
                "dropped events of a deleted user",
                user_id=user_id,
                events=len(received) - len(items),
            )
        if items:
            pending[user_id] = items

    # Users are independent and each update is two round trips to DynamoDB, so they run side
    # by side; results are then read in the batch's order, on this thread.
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=USER_WORKERS) as pool:
        futures = {
            user_id: pool.submit(
                _apply_with_retries, user_id, items, deps=deps, model=model, logger=logger
            )
            for user_id, items in pending.items()
        }
        for user_id, future in futures.items():
            try:
                outcome = future.result()
            except Exception:  # noqa: BLE001 - any failure of this user means "deliver again"
                summary.users_failed += 1
                logger.exception("user update failed; records will be redelivered", user_id=user_id)
                failure = sys.exc_info()
                for _, _, record in pending[user_id]:
                    processor.failure_handler(record=record, exception=failure)
                continue

            summary.new_events += outcome.new_events
            summary.duplicate_events += outcome.duplicate_events
            summary.unknown_items += outcome.unknown_items
            summary.users_written += int(outcome.written)
            logger.debug(
                "applied user events",
                user_id=user_id,
                new_events=outcome.new_events,
                duplicates=outcome.duplicate_events,
                attempts=outcome.attempts,
                model_version=model.version if model else None,
            )
    logger.debug(
        "applied users", users=len(pending), seconds=round(time.perf_counter() - started, 4)
    )


def _apply_with_retries(
    user_id: str,
    items: list[tuple[Event, str, KinesisStreamRecord]],
    *,
    deps: IngestDependencies,
    model: ItemModel | None,
    logger: Logger,
) -> UserOutcome:
    """Apply one user's events, retrying transient AWS errors with jittered backoff."""
    for attempt in range(1, USER_ATTEMPTS + 1):
        try:
            return apply_user_events(
                user_id=user_id,
                events=[event for event, _, _ in items],
                last_sequence=latest_sequence(sequence for _, sequence, _ in items),
                store=deps.states,
                model=model,
                limits=deps.settings.history_limits,
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in TRANSIENT_ERROR_CODES or attempt == USER_ATTEMPTS:
                raise
            logger.warning("transient error, retrying user", user_id=user_id, code=code)
            time.sleep(random.uniform(0, RETRY_BASE_DELAY_S * 2**attempt))
    raise AssertionError("unreachable: the last attempt returns or raises")


def _publish(summary: BatchSummary, metrics: Metrics) -> None:
    metrics.add_metric(name="RecordsReceived", unit=MetricUnit.Count, value=summary.records)
    metrics.add_metric(name="EventsApplied", unit=MetricUnit.Count, value=summary.new_events)
    metrics.add_metric(
        name="DuplicateEvents", unit=MetricUnit.Count, value=summary.duplicate_events
    )
    metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=summary.dead_lettered)
    metrics.add_metric(name="UsersWritten", unit=MetricUnit.Count, value=summary.users_written)
    metrics.add_metric(name="UsersFailed", unit=MetricUnit.Count, value=summary.users_failed)
