"""Stand-ins that let the benchmarks run the real handlers' code without AWS I/O.

:class:`DictDynamoDBClient` answers the two calls the DynamoDB adapter makes, from a
dictionary, so the adapter's own encoding and decoding of items stays in what is measured
while the network round trip does not. Everything else here builds inputs: item models of
any size, user histories, Kinesis records, and quiet Powertools utilities whose output goes
to ``/dev/null`` (formatting a log line is still paid for; writing it to a terminal is not).
"""

from __future__ import annotations

import base64
import importlib.util
import io
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
from aws_lambda_powertools import Logger, Metrics
from bench_common import REPO
from botocore.exceptions import ClientError
from numpy.typing import NDArray

from recsys.config import ModelConfig
from recsys.datasets import MovieLens, generate_synthetic, load_movielens
from recsys.errors import DatasetNotFoundError
from recsys.events import EventType
from recsys.model import ItemModel, build_model
from recsys.state import HistoryEntry

TABLE_NAME = "bench-user-state"
FIRST_SEQUENCE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_801
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/bench-events"

# Event types of a synthetic history, all with a positive weight; the mix leans to views.
HISTORY_TYPES = (
    EventType.VIEW,
    EventType.VIEW,
    EventType.VIEW,
    EventType.CLICK,
    EventType.CLICK,
    EventType.ADD_TO_CART,
    EventType.PURCHASE,
    EventType.LIKE,
)

DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the benchmark process


class DictDynamoDBClient:
    """``get_item`` and a conditional ``put_item`` over a dict, counting the writes.

    Only the two condition expressions the adapter sends are understood: the item must not
    exist, or its ``version`` must equal the expected one.
    """

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.put_calls = 0

    def get_item(self, *, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:  # noqa: N803
        item = self.items.get(Key["user_id"]["S"])
        return {} if item is None else {"Item": item}

    def put_item(  # noqa: N803 - boto3's parameter names
        self,
        *,
        TableName: str,
        Item: dict[str, Any],
        ConditionExpression: str,
        ExpressionAttributeValues: dict[str, Any] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        current = self.items.get(Item["user_id"]["S"])
        if ConditionExpression.startswith("attribute_not_exists"):
            holds = current is None
        else:
            expected = (ExpressionAttributeValues or {})[":expected"]["N"]
            holds = current is not None and current["version"]["N"] == expected
        if not holds:
            error = {"Code": "ConditionalCheckFailedException", "Message": "condition failed"}
            raise ClientError({"Error": error}, "PutItem")
        self.items[Item["user_id"]["S"]] = Item
        self.put_calls += 1
        return {}


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def quiet_logger(service: str) -> Logger:
    """A Powertools logger at INFO, as deployed, whose lines go to ``/dev/null``."""
    return Logger(service=service, level="INFO", stream=DEVNULL)


def quiet_metrics(service: str) -> Metrics:
    return Metrics(namespace="Recsys", service=service)


def synthetic_item_model(
    n_items: int, k: int = 64, n_categories: int = 10, seed: int = 0
) -> tuple[ItemModel, bytes]:
    """A model of ``n_items`` random factors, one category each and 1% unavailable.

    Returns
    -------
    tuple[ItemModel, bytes]
        The loaded model and its npz payload.
    """
    rng = np.random.default_rng(seed)
    item_factors = (rng.standard_normal((n_items, k), dtype=np.float32) * 0.1).astype(np.float32)
    width = len(str(n_items - 1))
    categories = rng.integers(0, n_categories, size=n_items)
    category_names = [f"cat-{c}" for c in range(n_categories)]
    return build_model(
        version=None,
        created_at=datetime(2026, 11, 1, tzinfo=UTC),
        parameters=ModelConfig(),
        counts={"users": 0, "items": n_items, "events": 0, "nonzeros": 0},
        item_ids=tuple(f"i{row:0{width}d}" for row in range(n_items)),
        item_factors=item_factors,
        popularity=rng.random(n_items).astype(np.float32),
        available=rng.random(n_items) >= 0.01,
        item_categories=[(category_names[c],) for c in categories.tolist()],
    )


def synthetic_history(
    user_id: str,
    item_ids: tuple[str, ...] | NDArray[np.str_],
    length: int,
    newest_ms: int,
    rng: np.random.Generator,
) -> tuple[HistoryEntry, ...]:
    """``length`` events on random items, one a minute up to ``newest_ms``, oldest first."""
    rows = rng.integers(0, len(item_ids), size=length)
    types = rng.integers(0, len(HISTORY_TYPES), size=length)
    return tuple(
        HistoryEntry(
            timestamp_ms=newest_ms - (length - position) * 60_000,
            event_id=f"{user_id}-h{position}",
            item_id=str(item_ids[row]),
            event_type=HISTORY_TYPES[kind],
            value=None,
        )
        for position, (row, kind) in enumerate(zip(rows.tolist(), types.tolist(), strict=True))
    )


def kinesis_record(payload: bytes, partition_key: str, position: int) -> dict[str, Any]:
    """One record of a Lambda Kinesis event, at sequence ``FIRST_SEQUENCE + position``."""
    sequence = str(FIRST_SEQUENCE + position)
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence,
            "data": base64.b64encode(payload).decode("ascii"),
            "approximateArrivalTimestamp": 1764840000.0,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/bench-ingest",
        "awsRegion": "us-east-1",
        "eventSourceARN": STREAM_ARN,
    }


@cache
def movielens() -> MovieLens:
    """MovieLens 100K, loaded once per run; raises ``DatasetNotFoundError`` when absent."""
    return load_movielens()


def load_function_module(name: str) -> ModuleType:
    """Import ``functions/<name>/app.py`` under its own module name (every one is ``app``)."""
    path = REPO / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"bench_function_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def npz_arrays(payload: bytes) -> dict[str, NDArray[Any]]:
    """Every array of an npz payload, read with no checks: the floor of loading a model."""
    with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def replay_dataset(
    report: Any, section: str, figure: str, quick_size: tuple[int, int, int], seed: int
) -> tuple[list[Any], list[Any], str] | None:
    """Events, catalogue and name of the data a replay benchmark runs on.

    MovieLens 100K in full mode (recording a skip and returning None when it is absent); a
    seeded synthetic log of ``quick_size`` (users, items, events) in quick mode.
    """
    if report.quick:
        users, items, events = quick_size
        synthetic = generate_synthetic(users, items, events, seed=seed)
        return list(synthetic.events()), synthetic.catalog, f"synthetic-{events // 1000}k"
    try:
        data = movielens()
    except DatasetNotFoundError as error:
        report.skip(section, figure, f"MovieLens 100K not found ({error})")
        return None
    return data.events, data.catalog, "movielens-100k"
