"""Ingest: CPU per event of the Kinesis handler without AWS I/O, and writes per event.

The handler measured is :func:`recsys.runtime.kinesis.handle_kinesis_batch` itself, with
Powertools' batch processor, logger and metrics as deployed, and the DynamoDB adapter over an
in-memory client: base64 and JSON decoding, validation, grouping by user, reading and
decoding each user's item, merging, fold-in, encoding and the conditional put are all in the
time; only the network round trips are not (nor botocore's request serialization).

Each batch holds one new event for each of 100 users whose stored history already has
``h`` events, the case where every event pays a full fold-in. The floor is that fold-in
alone (:func:`recsys.foldin.fold_in` on prepared confidences), the numerical work no
implementation of real-time updates can skip.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from bench_common import Report, interleaved_timings, median
from bench_fixtures import (
    DEVNULL,
    TABLE_NAME,
    DictDynamoDBClient,
    LambdaContext,
    kinesis_record,
    quiet_logger,
    quiet_metrics,
    replay_dataset,
    synthetic_history,
    synthetic_item_model,
)
from threadpoolctl import threadpool_limits

from recsys.adapters.dynamodb import DynamoDBUserStateStore
from recsys.catalog import CatalogItem
from recsys.config import ModelConfig
from recsys.evaluation import split_by_time
from recsys.events import Event, parse_event
from recsys.foldin import fold_history, fold_in, history_confidences
from recsys.ingestion import UserBatch
from recsys.interactions import InteractionLog
from recsys.model import ItemModel
from recsys.runtime.kinesis import handle_kinesis_batch
from recsys.runtime.settings import IngestSettings
from recsys.runtime.wiring import IngestDependencies
from recsys.serving import ModelCache
from recsys.state import UserState, merge_history
from recsys.training import train_model
from tests.fakes import InMemoryModelStore

SECTION = "ingest"
BATCH_USERS = 100
KINESIS_BATCH_SIZE = 100
MODEL_ITEMS = 10_000
US_PER_S = 1e6


class IngestHarness:
    """The ingest handler wired to an in-memory table and a published model."""

    def __init__(self, model: ItemModel, payload: bytes, limits_events: int = 500) -> None:
        models = InMemoryModelStore()
        models.publish(model.version, payload, model.manifest.model_dump_json().encode())
        self.client = DictDynamoDBClient()
        self.store = DynamoDBUserStateStore(self.client, TABLE_NAME)
        settings = IngestSettings.model_validate(
            {
                "USER_STATE_TABLE": TABLE_NAME,
                "MODEL_BUCKET": "bench-models",
                "HISTORY_MAX_EVENTS": limits_events,
            }
        )
        self.deps = IngestDependencies(
            settings=settings,
            states=self.store,
            models=ModelCache(models, refresh_seconds=3600.0),
            dead_letters=None,
        )
        self.processor = BatchProcessor(
            event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False
        )
        self.logger = quiet_logger("ingest")
        self.metrics = quiet_metrics("ingest")
        self.context = LambdaContext(function_name="ingest")

    def handle(self, kinesis_event: dict[str, Any]) -> None:
        """One invocation, metrics flushed as ``log_metrics`` does; raises on any failure."""
        response = handle_kinesis_batch(
            kinesis_event,
            self.context,
            deps=self.deps,
            processor=self.processor,
            logger=self.logger,
            metrics=self.metrics,
        )
        with redirect_stdout(DEVNULL):
            self.metrics.flush_metrics()
        if response["batchItemFailures"]:
            raise RuntimeError(f"ingest reported failures: {response['batchItemFailures']}")


def run(report: Report) -> None:
    """Per-event CPU at several history lengths, then writes per event on a replay."""
    histories = (50, 200) if report.quick else (50, 200, 500)
    repeats = 5 if report.quick else 25
    model, payload = synthetic_item_model(MODEL_ITEMS, seed=11)

    with threadpool_limits(limits=1, user_api="blas"):
        for history_length in histories:
            print(f"ingest with histories of {history_length} events", flush=True)
            _measure_cpu(report, model, payload, history_length, repeats)

        _measure_replay(report)


def _measure_cpu(
    report: Report, model: ItemModel, payload: bytes, history_length: int, repeats: int
) -> None:
    harness = IngestHarness(model, payload)
    rng = np.random.default_rng(history_length)
    now_ms = int(time.time() * 1000)
    users = [f"user-{n:04d}" for n in range(BATCH_USERS)]
    for user in users:
        history = synthetic_history(user, model.item_ids, history_length, now_ms - 120_000, rng)
        vector = fold_history(model, history).vector
        harness.store.put(UserState(user, history, vector, model.version, "1"), 0)
    snapshot = dict(harness.client.items)

    new_events = [
        Event(
            event_id=f"{user}-new",
            user_id=user,
            item_id=model.item_ids[int(rng.integers(model.n_items))],
            event_type="click",
            timestamp=datetime.fromtimestamp((now_ms - 60_000) / 1000, tz=UTC),
        )
        for user in users
    ]
    records = [
        kinesis_record(event.model_dump_json().encode(), event.user_id, position)
        for position, event in enumerate(new_events)
    ]
    kinesis_event = {"Records": records}

    # Inputs of each stage, prepared from the previous stage's output outside the timing.
    limits = harness.deps.settings.history_limits
    stored = [harness.store.get(user) for user in users]
    merged = [
        merge_history(entry.state.history, [event], limits)[0]
        for entry, event in zip(stored, new_events, strict=True)
        if entry is not None
    ]
    folded = [fold_history(model, history).vector for history in merged]
    updated = [
        replace(entry.state, history=history, vector=vector, last_sequence="2")
        for entry, history, vector in zip(stored, merged, folded, strict=True)
        if entry is not None
    ]
    confidences = [history_confidences(history, model) for history in merged]
    regularization = model.config.als.regularization

    def restore() -> None:
        harness.client.items = dict(snapshot)

    def handler() -> None:
        restore()
        harness.handle(kinesis_event)

    def decode_validate_group() -> None:
        now = datetime.now(UTC)
        batch: UserBatch[dict[str, Any]] = UserBatch()
        for record in records:
            payload = base64.b64decode(record["kinesis"]["data"], validate=True)
            batch.add(parse_event(payload, now=now), record["kinesis"]["sequenceNumber"], record)

    def write() -> None:
        restore()
        for state in updated:
            harness.store.put(state, expected_version=1)

    cases: dict[str, Callable[[], object]] = {
        "handler": handler,
        "decode_validate_group": decode_validate_group,
        "state_read": lambda: [harness.store.get(user) for user in users],
        "merge": lambda: [
            merge_history(entry.state.history, [event], limits)
            for entry, event in zip(stored, new_events, strict=True)
            if entry is not None
        ],
        "fold_history": lambda: [fold_history(model, history) for history in merged],
        "state_write": write,
        "fold_in_floor": lambda: [
            fold_in(model.item_factors, model.YtY, items, weights, regularization)
            for items, weights, _ in confidences
        ],
    }
    samples = interleaved_timings(cases, repeats=repeats, warmup=2)
    per_event = {name: median(times) * US_PER_S / len(records) for name, times in samples.items()}

    prefix = f"h{history_length}"
    floor = per_event["fold_in_floor"]
    report.add(SECTION, f"{prefix}.fold_in_floor_us_per_event", floor, "us/event")
    report.add(
        SECTION, f"{prefix}.handler_us_per_event", per_event["handler"], "us/event", reference=floor
    )
    for stage in ("decode_validate_group", "state_read", "merge", "state_write"):
        report.add(SECTION, f"{prefix}.{stage}_us_per_event", per_event[stage], "us/event")
    report.add(
        SECTION,
        f"{prefix}.fold_history_us_per_event",
        per_event["fold_history"],
        "us/event",
        reference=floor,
    )


def _measure_replay(report: Report) -> None:
    """Writes per event when the test period of a data set streams through the handler."""
    chosen = replay_dataset(
        report, SECTION, "movielens-100k.replay", quick_size=(200, 300, 4_000), seed=3
    )
    if chosen is None:
        return
    events, catalog, name = chosen

    print(f"ingest replay of the test period of {name}", flush=True)
    train_events, test_events = split_by_time(events, 0.8)
    harness = _harness_with_training_states(train_events, catalog)

    batches = [
        test_events[start : start + KINESIS_BATCH_SIZE]
        for start in range(0, len(test_events), KINESIS_BATCH_SIZE)
    ]
    kinesis_events = _kinesis_events(batches)
    user_batches = sum(len({event.user_id for event in batch}) for batch in batches)

    harness.client.put_calls = 0
    started = time.perf_counter()
    for kinesis_event in kinesis_events:
        harness.handle(kinesis_event)
    seconds = time.perf_counter() - started
    writes = harness.client.put_calls

    harness.client.put_calls = 0
    for kinesis_event in kinesis_events:
        harness.handle(kinesis_event)
    redelivery_writes = harness.client.put_calls

    report.add(
        SECTION, f"{name}.replay_writes_per_event", writes / len(test_events), "writes/event"
    )
    report.add(
        SECTION,
        f"{name}.replay_writes_per_user_batch",
        writes / user_batches,
        "writes/(user, batch)",
        target=1.0,
    )
    report.add(
        SECTION,
        f"{name}.redelivery_writes_per_event",
        redelivery_writes / len(test_events),
        "writes/event",
        target=0.0,
    )
    report.add(
        SECTION,
        f"{name}.replay_handler_us_per_event",
        seconds * US_PER_S / len(test_events),
        "us/event",
    )


def _harness_with_training_states(
    train_events: Sequence[Event], catalog: list[CatalogItem]
) -> IngestHarness:
    """A harness whose model and user states are those the training period leaves behind."""
    trained = train_model(InteractionLog.from_events(train_events), catalog, ModelConfig())
    harness = IngestHarness(trained.model, trained.payload)
    limits = harness.deps.settings.history_limits

    per_user: dict[str, list[Event]] = {}
    for event in train_events:
        per_user.setdefault(event.user_id, []).append(event)
    for user, user_events in per_user.items():
        history, _ = merge_history((), user_events, limits)
        vector = fold_history(trained.model, history).vector
        harness.store.put(UserState(user, history, vector, trained.model.version), 0)
    return harness


def _kinesis_events(batches: list[list[Event]]) -> list[dict[str, Any]]:
    kinesis_events, position = [], 0
    for batch in batches:
        records = []
        for event in batch:
            records.append(
                kinesis_record(event.model_dump_json().encode(), event.user_id, position)
            )
            position += 1
        kinesis_events.append({"Records": records})
    return kinesis_events
