"""`make chaos`: MovieLens 100K through the stream with faults, then compared with a clean run.

The pipeline is the product's own: a moto server on 127.0.0.1 with the template's resources,
Lambda's event source mapping emulation, and the ingest handler's code
(:func:`recsys.runtime.kinesis.handle_kinesis_batch`) run in this process so that its
DynamoDB client can be wrapped with injected faults. Injected:

- duplicates: 10% of the events are put on the stream a second time, later;
- poison: 2% extra records that can never be valid (six kinds);
- throttling: 5% of the ingest's DynamoDB calls and of the producer's PutRecords calls fail
  with a throttling error after botocore's own retries;
- a concurrent writer: another thread re-applies a sample of events to the same users
  through the same optimistic-lock path while the stream is processed.

The clean run applies every valid event exactly once, in memory. The chaos run passes when
every user's history and vector equal the clean run's: nothing lost, nothing counted twice.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

from local_stack.faults import FaultInjectingClient, FaultPlan
from local_stack.kinesis import EventSourceMapping, KinesisEventSettings, SqsDestination
from local_stack.moto_server import MotoServer
from local_stack.template import load_template, provision
from recsys.adapters.dynamodb import DynamoDBUserStateStore
from recsys.adapters.s3 import S3ModelStore
from recsys.adapters.sqs import SqsDeadLetterQueue
from recsys.config import ModelConfig
from recsys.datasets import load_movielens
from recsys.errors import DatasetNotFoundError
from recsys.evaluation import split_by_time
from recsys.events import Event
from recsys.foldin import fold_history
from recsys.ingestion import RetryPolicy, apply_user_events
from recsys.interactions import InteractionLog
from recsys.runtime.kinesis import handle_kinesis_batch
from recsys.runtime.settings import IngestSettings
from recsys.runtime.wiring import IngestDependencies
from recsys.serving import ModelCache
from recsys.state import merge_history
from recsys.training import train_model

REPO = Path(__file__).resolve().parents[1]
POISON = [
    b"{not json",
    b"\xff\xfe not utf-8",
    json.dumps({"event_id": "x", "user_id": "u", "unknown": 1}).encode(),
    json.dumps(
        {
            "event_id": "y",
            "user_id": "1",
            "item_id": "1",
            "event_type": "teleport",
            "timestamp": "1998-01-01T00:00:00Z",
        }
    ).encode(),
    json.dumps(
        {
            "event_id": "z",
            "user_id": "1",
            "item_id": "i" * 10_000,
            "event_type": "view",
            "timestamp": "1998-01-01T00:00:00Z",
        }
    ).encode(),
    json.dumps({"event_id": "w", "padding": "p" * 5000}).encode(),
]


@dataclass
class InProcessIngest:
    """The ingest function's code as the mapping's target, with injectable dependencies."""

    deps: IngestDependencies
    logical_id: str = "IngestFunction"
    function_name: str = "chaos-ingest"
    function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:chaos-ingest"

    def __post_init__(self) -> None:
        self.processor = BatchProcessor(
            event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False
        )
        # Failures are the point of this run: they are counted, not printed one by one.
        self.logger = Logger(service="ingest", level="CRITICAL")
        self.metrics = Metrics(namespace="chaos")

    def invoke(self, event: Any, timeout_s: float | None = None) -> Any:
        response = handle_kinesis_batch(
            event,
            None,
            deps=self.deps,
            processor=self.processor,
            logger=self.logger,
            metrics=self.metrics,
        )
        self.metrics.clear_metrics()  # Lambda would flush them per invocation, to CloudWatch.
        return response


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=0, help="limit the events (0: all)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPO / "build" / "chaos.json")
    args = parser.parse_args()

    try:
        movielens = load_movielens()
    except DatasetNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    events = movielens.events[: args.events] if args.events else movielens.events
    rng = random.Random(args.seed)

    train_events, _ = split_by_time(events, 0.8)
    model = train_model(InteractionLog.from_events(train_events), movielens.catalog, ModelConfig())
    print(f"model {model.model.version} trained on {len(train_events):,} events")

    records, duplicates, poison = chaotic_stream(events, rng)
    print(f"stream: {len(events):,} events + {duplicates:,} duplicates + {poison:,} poison")

    with MotoServer() as server:
        result = run_chaos(server, model, records, events, rng)
    result.update({"events": len(events), "duplicates": duplicates, "poison": poison})

    for name, value in result.items():
        print(f"  {name}: {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if result["states_equal"] else 1


def chaotic_stream(
    events: list[Event], rng: random.Random
) -> tuple[list[tuple[str, bytes]], int, int]:
    """Events in time order, 10% of them put again later, 2% poison records mixed in."""
    placed: list[tuple[float, str, bytes]] = [
        (float(n), event.user_id, event.model_dump_json().encode())
        for n, event in enumerate(events)
    ]
    duplicated = rng.sample(range(len(events)), len(events) // 10)
    for n in duplicated:
        placed.append((rng.uniform(n, len(events)), placed[n][1], placed[n][2]))
    poison_count = len(events) // 50
    for n in range(poison_count):
        placed.append((rng.uniform(0, len(events)), "poison", POISON[n % len(POISON)]))
    placed.sort(key=lambda entry: entry[0])
    return [(key, data) for _, key, data in placed], len(duplicated), poison_count


def run_chaos(
    server: MotoServer,
    trained: Any,
    records: list[tuple[str, bytes]],
    events: list[Event],
    rng: random.Random,
) -> dict[str, Any]:
    template = load_template(REPO / "template.yaml")
    resources = provision(
        template,
        kinesis=server.client("kinesis"),
        dynamodb=server.client("dynamodb"),
        s3=server.client("s3"),
        sqs=server.client("sqs"),
    )
    model = trained.model
    models = S3ModelStore(server.client("s3"), resources.model_bucket)
    models.publish(model.version, trained.payload, model.manifest.model_dump_json().encode())

    settings = IngestSettings.from_environ(resources.function_environment("IngestFunction"))
    dynamodb_faults = FaultPlan(
        rate=0.05,
        error_code="ProvisionedThroughputExceededException",
        operations=frozenset({"get_item", "put_item"}),
        seed=1,
    )
    deps = IngestDependencies(
        settings=settings,
        states=DynamoDBUserStateStore(
            FaultInjectingClient(server.client("dynamodb"), dynamodb_faults), resources.table_name
        ),
        models=ModelCache(models, refresh_seconds=60),
        dead_letters=SqsDeadLetterQueue(server.client("sqs"), resources.failure_queue_url),
    )
    properties = template["Resources"]["IngestFunction"]["Properties"]["Events"]["Stream"]
    mapping = EventSourceMapping(
        server.client("kinesis"),
        resources.stream_name,
        InProcessIngest(deps),
        KinesisEventSettings.from_event_properties(properties["Properties"]),
        on_failure=SqsDestination(server.client("sqs"), resources.failure_queue_url),
    )

    producer_faults = FaultPlan(
        rate=0.05,
        error_code="ProvisionedThroughputExceededException",
        operations=frozenset({"put_records"}),
        seed=2,
    )
    producer = FaultInjectingClient(server.client("kinesis"), producer_faults)
    writer = ConcurrentWriter(server, resources.table_name, model, settings, events, rng)

    started = time.perf_counter()
    mapping.start()
    writer.start()
    try:
        put_all(producer, resources.stream_name, records)
        mapping.wait_until_caught_up(timeout_s=1800)
    finally:
        writer.stop()
        mapping.stop()
    seconds = time.perf_counter() - started

    comparison = compare_with_clean_run(server, resources.table_name, model, settings, events)
    queue = server.client("sqs").get_queue_attributes(
        QueueUrl=resources.failure_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    stats = mapping.stats
    return {
        "throttled": sum(dynamodb_faults.injected.values())
        + sum(producer_faults.injected.values()),
        "concurrent_writes": writer.writes,
        "dead_lettered": int(queue["Attributes"]["ApproximateNumberOfMessages"]),
        "redelivered_records": stats.records - stats.records_succeeded,
        "discarded_records": stats.records_discarded,
        "seconds": round(seconds, 1),
        **comparison,
    }


def put_all(kinesis: Any, stream_name: str, records: list[tuple[str, bytes]]) -> None:
    """PutRecords in order, retrying throttled calls and refused records."""
    for start in range(0, len(records), 500):
        pending = [
            {"PartitionKey": key, "Data": data} for key, data in records[start : start + 500]
        ]
        for attempt in range(20):
            try:
                response = kinesis.put_records(StreamName=stream_name, Records=pending)
            except Exception:  # noqa: BLE001 - an injected throttle: nothing was written
                time.sleep(0.01 * 2 ** min(attempt, 6))
                continue
            pending = [
                r for r, out in zip(pending, response["Records"], strict=True) if "ErrorCode" in out
            ]
            if not pending:
                break
        else:
            raise RuntimeError("PutRecords kept failing")


class ConcurrentWriter:
    """Another writer: re-applies sampled events to their users while ingest runs."""

    def __init__(
        self,
        server: MotoServer,
        table: str,
        model: Any,
        settings: Any,
        events: list[Event],
        rng: random.Random,
    ) -> None:
        self._store = DynamoDBUserStateStore(server.client("dynamodb"), table)
        self._model, self._settings = model, settings
        self._sample = rng.sample(events, min(2000, len(events)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="concurrent-writer", daemon=True)
        self.writes = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        for event in self._sample:
            if self._stop.is_set():
                return
            outcome = apply_user_events(
                user_id=event.user_id,
                events=[event],
                last_sequence=None,
                store=self._store,
                model=self._model,
                limits=self._settings.history_limits,
                retry=RetryPolicy(max_attempts=50),
            )
            self.writes += int(outcome.written)
            time.sleep(0.005)


def compare_with_clean_run(
    server: MotoServer, table: str, model: Any, settings: Any, events: list[Event]
) -> dict[str, Any]:
    """Every user's stored state against applying each valid event exactly once."""
    per_user: dict[str, list[Event]] = {}
    for event in events:
        per_user.setdefault(event.user_id, []).append(event)

    store = DynamoDBUserStateStore(server.client("dynamodb"), table)
    lost = double_counted = mismatched = 0
    for user_id, user_events in per_user.items():
        clean, _ = merge_history((), user_events, settings.history_limits)
        stored = store.get(user_id)
        history = stored.state.history if stored else ()
        ids = [entry.event_id for entry in history]
        double_counted += len(ids) - len(set(ids))
        lost += len({e.event_id for e in clean} - set(ids))
        vector_ok = stored is not None and np.allclose(
            stored.state.vector, fold_history(model, clean).vector, rtol=1e-4, atol=1e-5
        )
        mismatched += int(history != clean or not vector_ok)
    return {
        "users": len(per_user),
        "states_equal": mismatched == 0,
        "mismatched_users": mismatched,
        "lost": lost,
        "double_counted": double_counted,
    }


if __name__ == "__main__":
    sys.exit(main())
