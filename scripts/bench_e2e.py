"""End to end on the local stack: throughput into ingest, freshness, latency over HTTP.

Everything runs on this machine: moto on 127.0.0.1, the event source mapping polling the
stream and invoking the ingest function in its own worker process, the API invoking the
recommend function in another. The archive (Firehose) is not started: in AWS it is a
separate consumer on other hardware, here it would only take CPU from the path measured.

What is optimistic next to AWS: the local mapping polls an idle shard every 50 ms where
Lambda polls each shard about once a second, and there is no network between the parts.
What is pessimistic: moto answers every AWS call from Python, on the same two cores.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
from bench_common import REPO, Report, percentile
from bench_fixtures import synthetic_item_model

from recsys.adapters.s3 import S3ModelStore
from recsys.model import ItemModel

SECTION = "e2e"
MODEL_ITEMS = 10_000
PUT_RECORDS_LIMIT = 500
CATCH_UP_TIMEOUT_S = 300.0
FRESHNESS_TIMEOUT_S = 30.0
POLL_PAUSE_S = 0.005
HTTP_TIMEOUT_S = 10.0
MS_PER_S = 1e3

# No proxy from the environment may ever see these requests: they are for 127.0.0.1 only.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def run(report: Report) -> None:
    """Start the local stack, publish a model, then measure; skip with the reason if it fails."""
    try:
        from local_stack.stack import LocalStack
    except ImportError as error:
        report.skip(SECTION, "local-stack", f"local_stack.stack is not importable ({error})")
        return

    sizes = (
        {"events": 500, "users": 100, "fresh": 5, "requests": 30}
        if report.quick
        else {"events": 5_000, "users": 500, "fresh": 40, "requests": 300}
    )
    model, payload = synthetic_item_model(MODEL_ITEMS, seed=13)
    try:
        with (
            _functions_print_to_devnull(),
            LocalStack(REPO, api_port=0, start_firehose=False) as stack,
        ):
            S3ModelStore(stack.client("s3"), stack.resources.model_bucket).publish(
                model.version, payload, model.manifest.model_dump_json().encode()
            )
            figures = _measure(stack, model, sizes)
    except Exception as error:  # noqa: BLE001 - any failure of the stack is a skip, not a crash
        report.skip(SECTION, "local-stack", f"the local stack failed: {error!r}"[:500])
        return

    for name, (value, unit) in figures.items():
        report.add(SECTION, name, value, unit)


@contextmanager
def _functions_print_to_devnull() -> Iterator[None]:
    """Point file descriptor 1 at /dev/null while the stack's worker processes start.

    The workers inherit it and write their log lines and EMF metrics there, as they would to
    CloudWatch; the benchmark's own progress goes to stderr meanwhile.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _measure(stack: Any, model: ItemModel, sizes: dict[str, int]) -> dict[str, tuple[float, str]]:
    kinesis = stack.client("kinesis")
    stream = stack.resources.stream_name
    rng = np.random.default_rng(17)
    figures: dict[str, tuple[float, str]] = {}

    _progress(f"e2e: {sizes['events']:,} events through the stream")
    events = [
        _event(f"tp-{n}", f"e2e-user-{n % sizes['users']}", model, rng)
        for n in range(sizes["events"])
    ]
    started = time.perf_counter()
    for start in range(0, len(events), PUT_RECORDS_LIMIT):
        chunk = events[start : start + PUT_RECORDS_LIMIT]
        response = kinesis.put_records(
            StreamName=stream,
            Records=[
                {"Data": json.dumps(event).encode(), "PartitionKey": event["user_id"]}
                for event in chunk
            ],
        )
        if response.get("FailedRecordCount"):
            raise RuntimeError(f"{response['FailedRecordCount']} records were not put")
    stack.wait_until_caught_up(CATCH_UP_TIMEOUT_S)
    seconds = time.perf_counter() - started
    figures["ingest_events_per_s"] = (len(events) / seconds, "events/s")

    _progress(f"e2e: freshness over {sizes['fresh']} events")
    freshness = [
        _freshness(stack, kinesis, stream, f"e2e-user-{n}", model, rng)
        for n in range(sizes["fresh"])
    ]
    figures["freshness_p50_ms"] = (percentile(freshness, 50) * MS_PER_S, "ms")
    figures["freshness_p99_ms"] = (percentile(freshness, 99) * MS_PER_S, "ms")

    _progress(f"e2e: {sizes['requests']} requests over HTTP")
    url = f"{stack.api_url}/users/e2e-user-0/recommendations?k=10"
    headers = _auth_header("e2e-user-0")
    if _get_json(url, headers).get("source") != "personalized":
        raise RuntimeError("the streamed events did not make e2e-user-0's list personalized")
    latencies = []
    for _ in range(sizes["requests"]):
        request_started = time.perf_counter()
        _get_json(url, headers)
        latencies.append(time.perf_counter() - request_started)
    figures["http_recommend_p50_ms"] = (percentile(latencies, 50) * MS_PER_S, "ms")
    figures["http_recommend_p99_ms"] = (percentile(latencies, 99) * MS_PER_S, "ms")

    # What one DynamoDB call costs against moto here: ingest makes two per user and batch.
    dynamodb = stack.client("dynamodb")
    table = stack.resources.table_name
    reads = []
    for _ in range(sizes["requests"]):
        read_started = time.perf_counter()
        dynamodb.get_item(TableName=table, Key={"user_id": {"S": "e2e-user-0"}})
        reads.append(time.perf_counter() - read_started)
    figures["moto_dynamodb_get_p50_ms"] = (percentile(reads, 50) * MS_PER_S, "ms")
    return figures


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _freshness(
    stack: Any, kinesis: Any, stream: str, user_id: str, model: ItemModel, rng: Any
) -> float:
    """Seconds from PutRecord until the user's list says it reflects that record."""
    event = _event(f"fresh-{user_id}-{time.time_ns()}", user_id, model, rng)
    url = f"{stack.api_url}/users/{user_id}/recommendations?k=10"
    headers = _auth_header(user_id)

    started = time.perf_counter()
    sequence = int(
        kinesis.put_record(
            StreamName=stream, Data=json.dumps(event).encode(), PartitionKey=user_id
        )["SequenceNumber"]
    )
    deadline = started + FRESHNESS_TIMEOUT_S
    while time.perf_counter() < deadline:
        reflected = _get_json(url, headers).get("last_sequence")
        if reflected is not None and int(reflected) >= sequence:
            return time.perf_counter() - started
        time.sleep(POLL_PAUSE_S)
    raise TimeoutError(f"{user_id}'s list did not reflect a new event in {FRESHNESS_TIMEOUT_S} s")


def _event(event_id: str, user_id: str, model: ItemModel, rng: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "user_id": user_id,
        "item_id": model.item_ids[int(rng.integers(model.n_items))],
        "event_type": "click",
        "timestamp": datetime.now(UTC).isoformat(),
    }


def _get_json(url: str, headers: dict[str, str]) -> dict[str, Any]:
    """GET a JSON body from the local API."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"the benchmark only talks to its own local stack, not {url}")
    request = urllib.request.Request(url, headers=headers)
    with _OPENER.open(request, timeout=HTTP_TIMEOUT_S) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body


def _auth_header(user_id: str) -> dict[str, str]:
    """A bearer token the local API's stand-in authorizer accepts; none if it has none."""
    try:
        from local_stack.auth import auth_header
    except ImportError:
        return {}
    return auth_header(user_id)
