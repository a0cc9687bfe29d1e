"""One cold start of one function, in a fresh interpreter: import, then a first invocation.

Usage: ``python scripts/bench_coldstart_child.py FUNCTION OUT_JSON``, run by
``bench_coldstart.py`` with the function's template environment already set (Powertools
reads it at import, as in Lambda). Only the standard library is imported before the clock
starts, so the import measured is the function's own, as in Lambda's init phase. The AWS
services of the first invocation are moto's, in this process, with fake credentials: the
resources come from ``template.yaml`` and are provisioned through a separate boto3 session,
so the function still creates (and pays for) its own clients.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
STACK_PREFIX = "recsys-cold"
LOGICAL_IDS = {
    "ingest": "IngestFunction",
    "recommend": "RecommendFunction",
    "train": "TrainFunction",
}
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
USER_ID = "cold-user"
MODEL_ITEMS = 1_000


def main(function: str, out_path: Path) -> None:
    os.environ.update(FAKE_CREDENTIALS)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    sys.path[:0] = [str(REPO / "functions" / function), str(REPO / "shared")]

    started = time.perf_counter()
    app = importlib.import_module("app")
    imported = time.perf_counter()

    from moto import mock_aws

    with mock_aws():
        event = _deploy(function)
        first_started = time.perf_counter()
        first = app.lambda_handler(event, _context(function))
        first_done = time.perf_counter()
        app.lambda_handler(event, _context(function))
        warm_done = time.perf_counter()
    _check(function, first)

    timings = {
        "import_s": imported - started,
        "first_invocation_s": first_done - first_started,
        "warm_invocation_s": warm_done - first_done,
    }
    out_path.write_text(json.dumps(timings))


def _context(function: str) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(
        function_name=function,
        memory_limit_in_mb=1024,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function}",
        aws_request_id="00000000-0000-4000-8000-000000000001",
        get_remaining_time_in_millis=lambda: 30_000,
    )


def _deploy(function: str) -> dict[str, Any]:
    """Provision the template, seed what the function reads, set its environment."""
    import boto3

    from local_stack.template import load_template, provision

    session = boto3.session.Session(region_name=REGION)
    resources = provision(
        load_template(REPO / "template.yaml"),
        kinesis=session.client("kinesis"),
        dynamodb=session.client("dynamodb"),
        s3=session.client("s3"),
        sqs=session.client("sqs"),
        prefix=STACK_PREFIX,
    )

    # The parent set these before this interpreter started; a mismatch means the template
    # resolved differently here, and the function would look for other resources.
    expected = resources.function_environment(LOGICAL_IDS[function])
    differing = sorted(name for name, value in expected.items() if os.environ.get(name) != value)
    if differing:
        raise SystemExit(f"environment differs from the template's in {differing}")

    if function == "train":
        return _seed_archive(session, resources)
    model = _publish_model(session, resources)
    if function == "recommend":
        return _seed_user(session, resources, model)
    return _kinesis_event(model)


def _publish_model(session: Any, resources: Any) -> Any:
    from datetime import UTC, datetime

    import numpy as np

    from recsys.adapters.s3 import S3ModelStore
    from recsys.config import ModelConfig
    from recsys.model import build_model

    rng = np.random.default_rng(0)
    model, payload = build_model(
        version=None,
        created_at=datetime(2026, 11, 1, tzinfo=UTC),
        parameters=ModelConfig(),
        counts={"users": 0, "items": MODEL_ITEMS, "events": 0, "nonzeros": 0},
        item_ids=tuple(f"item-{n}" for n in range(MODEL_ITEMS)),
        item_factors=rng.standard_normal((MODEL_ITEMS, 64)).astype(np.float32) * 0.1,
        popularity=rng.random(MODEL_ITEMS).astype(np.float32),
        available=np.ones(MODEL_ITEMS, dtype=np.bool_),
        item_categories=[(f"cat-{n % 5}",) for n in range(MODEL_ITEMS)],
    )
    store = S3ModelStore(session.client("s3"), resources.model_bucket)
    store.publish(model.version, payload, model.manifest.model_dump_json().encode())
    return model


def _seed_user(session: Any, resources: Any, model: Any) -> dict[str, Any]:
    from recsys.adapters.dynamodb import DynamoDBUserStateStore
    from recsys.events import EventType
    from recsys.foldin import fold_history
    from recsys.state import HistoryEntry, UserState

    newest_ms = int(time.time() * 1000)
    history = tuple(
        HistoryEntry(newest_ms - (50 - n) * 60_000, f"e{n}", f"item-{n * 7}", EventType.VIEW)
        for n in range(50)
    )
    vector = fold_history(model, history).vector
    store = DynamoDBUserStateStore(session.client("dynamodb"), resources.table_name)
    store.put(UserState(USER_ID, history, vector, model.version, "1"), 0)

    event = json.loads((REPO / "events" / "recommend_api.json").read_text())
    event["path"] = f"/users/{USER_ID}/recommendations"
    event["pathParameters"] = {"userId": USER_ID}
    event["queryStringParameters"] = {"k": "10"}
    event["multiValueQueryStringParameters"] = {"k": ["10"]}
    event["requestContext"]["authorizer"] = {"claims": {"sub": USER_ID, "token_use": "id"}}
    return dict(event)


def _kinesis_event(model: Any) -> dict[str, Any]:
    import base64
    from datetime import UTC, datetime

    event = json.loads((REPO / "events" / "ingest_kinesis.json").read_text())
    template = event["Records"][0]
    records = []
    for n in range(10):
        payload = {
            "event_id": f"cold-{n}",
            "user_id": f"cold-user-{n % 2}",
            "item_id": model.item_ids[n * 11],
            "event_type": "click",
            "timestamp": datetime.now(UTC).isoformat(),
        }
        sequence = str(int(template["kinesis"]["sequenceNumber"]) + n)
        record = json.loads(json.dumps(template))
        record["kinesis"]["data"] = base64.b64encode(json.dumps(payload).encode()).decode()
        record["kinesis"]["sequenceNumber"] = sequence
        record["kinesis"]["partitionKey"] = payload["user_id"]
        record["eventID"] = f"shardId-000000000000:{sequence}"
        records.append(record)
    return {"Records": records}


def _seed_archive(session: Any, resources: Any) -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta

    from recsys.adapters.s3 import S3CatalogSource, S3EventArchive
    from recsys.catalog import CatalogItem

    now = datetime.now(UTC)
    lines = [
        json.dumps(
            {
                "event_id": f"seed-{user}-{item}",
                "user_id": f"u-{user}",
                "item_id": f"item-{item}",
                "event_type": "view",
                "timestamp": (now - timedelta(hours=2, minutes=user + item)).isoformat(),
            }
        ).encode()
        for user in range(50)
        for item in range(20)
        if (user + item) % 3 == 0
    ]
    s3 = session.client("s3")
    S3EventArchive(s3, resources.archive_bucket).write_lines(now.date(), lines, "cold-0001")
    S3CatalogSource(s3, resources.model_bucket).write_catalog(
        CatalogItem(item_id=f"item-{n}", categories=("even" if n % 2 == 0 else "odd",))
        for n in range(20)
    )
    return {"time": now.isoformat().replace("+00:00", "Z")}


def _check(function: str, result: Any) -> None:
    if function == "recommend" and result.get("statusCode") != 200:
        raise SystemExit(f"recommend answered {result.get('statusCode')}: {result.get('body')}")
    if function == "ingest" and result.get("batchItemFailures"):
        raise SystemExit(f"ingest failed records: {result['batchItemFailures']}")
    if function == "train" and not result.get("published"):
        raise SystemExit(f"train published nothing: {result}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
