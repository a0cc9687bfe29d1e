"""Throttling and transient errors: retried where safe, else reported, never acknowledged."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

from local_stack.faults import FaultInjectingClient, FaultPlan
from recsys.adapters.dynamodb import DynamoDBUserStateStore
from recsys.adapters.s3 import S3ModelStore
from recsys.adapters.sqs import SqsDeadLetterQueue
from recsys.config import HistoryLimits
from recsys.runtime.kinesis import handle_kinesis_batch
from recsys.runtime.settings import IngestSettings
from recsys.runtime.wiring import IngestDependencies
from recsys.serving import ModelCache
from tests.factories import kinesis_event, make_model


def _events(
    count: int, users: int, seed: int
) -> tuple[list[tuple[str, bytes]], dict[str, set[str]]]:
    rng = random.Random(seed)
    payloads, expected = [], {}
    for n in range(count):
        user = f"u-{rng.randrange(users)}"
        payloads.append(
            (
                user,
                json.dumps(
                    {
                        "event_id": f"e-{n}",
                        "user_id": user,
                        "item_id": f"i{rng.randrange(6)}",
                        "event_type": "click",
                        "timestamp": f"2026-11-20T10:{n // 60 % 60:02d}:{n % 60:02d}Z",
                    }
                ).encode(),
            )
        )
        expected.setdefault(user, set()).add(f"e-{n}")
    return payloads, expected


def _deps(deployment, dynamodb: Any, sqs: Any | None = None) -> IngestDependencies:
    settings = IngestSettings.from_environ(
        deployment.resources.function_environment("IngestFunction")
    )
    s3 = deployment.client("s3")
    return IngestDependencies(
        settings=settings,
        states=DynamoDBUserStateStore(dynamodb, settings.USER_STATE_TABLE),
        models=ModelCache(S3ModelStore(s3, settings.MODEL_BUCKET), refresh_seconds=60),
        dead_letters=SqsDeadLetterQueue(sqs, settings.FAILURE_QUEUE_URL) if sqs else None,
    )


def _deliver_like_lambda(
    deps: IngestDependencies, records: list[dict], max_rounds: int = 400
) -> int:
    """Deliver, then redeliver from the lowest failed sequence number until none fail."""
    processor = BatchProcessor(
        event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False
    )
    position, rounds_with_failures = 0, 0
    for _ in range(max_rounds):
        if position >= len(records):
            return rounds_with_failures
        batch = records[position : position + 100]
        response = handle_kinesis_batch(
            {"Records": batch},
            None,
            deps=deps,
            processor=processor,
            logger=Logger(service="test"),
            metrics=Metrics(namespace="test"),
        )
        failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
        if failed:
            rounds_with_failures += 1
            lowest = min(failed, key=int)
            position += [r["kinesis"]["sequenceNumber"] for r in batch].index(lowest)
        else:
            position += len(batch)
    raise AssertionError("records still failing after the delivery limit")


def _throttled_dynamodb(deployment, rate: float) -> FaultInjectingClient:
    plan = FaultPlan(
        rate=rate,
        error_code="ProvisionedThroughputExceededException",
        operations=frozenset({"get_item", "put_item"}),
        seed=2,
    )
    return FaultInjectingClient(deployment.client("dynamodb"), plan)


def _assert_exactly(deployment, expected: dict[str, set[str]]) -> None:
    store = DynamoDBUserStateStore(deployment.client("dynamodb"), deployment.resources.table_name)
    for user, event_ids in expected.items():
        assert sorted(e.event_id for e in store.get(user).state.history) == sorted(event_ids)


def test_occasional_throttling_is_absorbed_by_retries_inside_the_invocation(deployment):
    # GIVEN DynamoDB throttling 10% of reads and writes past botocore's own retries
    payloads, expected = _events(300, users=12, seed=1)
    faulty = _throttled_dynamodb(deployment, rate=0.1)

    # WHEN the stream is delivered
    records = kinesis_event(payloads)["Records"]
    rounds_with_failures = _deliver_like_lambda(_deps(deployment, faulty), records)

    # THEN faults happened, no record needed redelivery, every user holds exactly their events
    assert sum(faulty.injected.values()) > 0
    assert rounds_with_failures == 0
    _assert_exactly(deployment, expected)


def test_persistent_throttling_is_reported_and_redelivery_applies_each_event_once(deployment):
    # GIVEN DynamoDB throttling 30% of calls: some users fail all their attempts
    payloads, expected = _events(300, users=12, seed=1)
    faulty = _throttled_dynamodb(deployment, rate=0.3)

    # WHEN the stream is delivered the way Lambda does, retrying from the lowest failure
    records = kinesis_event(payloads)["Records"]
    rounds_with_failures = _deliver_like_lambda(_deps(deployment, faulty), records)

    # THEN failures were reported and redelivered, yet every user holds exactly their events
    assert rounds_with_failures > 0
    _assert_exactly(deployment, expected)


def test_poison_record_is_reported_for_retry_when_the_failure_queue_is_throttled(deployment):
    # GIVEN a failure queue that refuses every message
    sqs = FaultInjectingClient(
        deployment.client("sqs"), FaultPlan(rate=1.0, error_code="ThrottlingException")
    )
    deps = _deps(deployment, deployment.client("dynamodb"), sqs)
    payloads, _ = _events(3, users=1, seed=3)
    event = kinesis_event([payloads[0], ("u-0", b"not json"), payloads[2]])

    # WHEN the batch is handled
    processor = BatchProcessor(
        event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False
    )
    response = handle_kinesis_batch(
        event,
        None,
        deps=deps,
        processor=processor,
        logger=Logger(service="test"),
        metrics=Metrics(namespace="test"),
    )

    # THEN the poison record is not acknowledged: Lambda will deliver it again
    poison_sequence = event["Records"][1]["kinesis"]["sequenceNumber"]
    assert response == {"batchItemFailures": [{"itemIdentifier": poison_sequence}]}


def test_throttled_model_reads_keep_the_last_good_model(deployment):
    # GIVEN a container that loaded a model, then S3 starts throttling
    s3 = deployment.client("s3")
    store = S3ModelStore(s3, deployment.resources.model_bucket)
    model, payload = make_model(np.eye(3))
    store.publish(model.version, payload, model.manifest.model_dump_json().encode())
    plan = FaultPlan(rate=0.0, error_code="SlowDown")
    now = [0.0]
    cache = ModelCache(
        S3ModelStore(FaultInjectingClient(s3, plan), deployment.resources.model_bucket),
        refresh_seconds=1,
        clock=lambda: now[0],
    )
    assert cache.current().version == model.version

    # WHEN every call fails at the next refresh
    plan.rate = 1.0
    now[0] = 10.0

    # THEN the container keeps serving what it had, and says why
    assert cache.current().version == model.version
    assert "SlowDown" in cache.last_error


def test_history_limits_hold_at_their_boundary_through_the_handler(deployment):
    # GIVEN one user with exactly max_events + 1 events in one batch
    limits = HistoryLimits()
    payloads, _ = _events(limits.max_events + 1, users=1, seed=4)
    deps = _deps(deployment, deployment.client("dynamodb"))

    # WHEN delivered
    _deliver_like_lambda(deps, kinesis_event(payloads)["Records"])

    # THEN the oldest one was dropped and exactly max_events remain
    history = deps.states.get("u-0").state.history
    assert len(history) == limits.max_events
    assert "e-0" not in {entry.event_id for entry in history}
