"""Small builders shared by the tests: models, events and histories with known contents."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from recsys.config import ModelConfig
from recsys.events import Event, EventType
from recsys.model import ItemModel, build_model

BASE_TIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make_event(
    event_id: str,
    *,
    user_id: str = "u1",
    item_id: str = "i1",
    event_type: EventType = EventType.VIEW,
    minutes: float = 0.0,
    value: float | None = None,
) -> Event:
    """A valid event ``minutes`` after :data:`BASE_TIME`."""
    return Event(
        event_id=event_id,
        user_id=user_id,
        item_id=item_id,
        event_type=event_type,
        value=value,
        timestamp=BASE_TIME + timedelta(minutes=minutes),
    )


def make_model(
    item_factors: np.ndarray,
    *,
    item_ids: list[str] | None = None,
    popularity: np.ndarray | None = None,
    available: np.ndarray | None = None,
    categories: list[tuple[str, ...]] | None = None,
    config: ModelConfig | None = None,
    attributes: list[tuple[str, ...]] | None = None,
) -> tuple[ItemModel, bytes]:
    """A model with the given factors; other fields default to neutral values."""
    n_items = item_factors.shape[0]
    return build_model(
        version=None,
        created_at=BASE_TIME,
        parameters=config or ModelConfig(),
        counts={"users": 0, "items": n_items, "events": 0, "nonzeros": 0},
        item_ids=tuple(item_ids or [f"i{row}" for row in range(n_items)]),
        item_factors=item_factors.astype(np.float32),
        popularity=np.zeros(n_items) if popularity is None else popularity,
        available=np.ones(n_items, dtype=bool) if available is None else available,
        item_categories=categories or [()] * n_items,
        item_attributes=attributes,
    )


def kinesis_event(
    payloads: list[tuple[str, bytes]],
    first_sequence: int = 10**20,
    shard: str = "shardId-000000000000",
) -> dict[str, Any]:
    """A Lambda Kinesis event carrying ``(partition key, data)`` payloads, in order."""
    records = []
    for offset, (partition_key, data) in enumerate(payloads):
        sequence = str(first_sequence + offset)
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": partition_key,
                    "sequenceNumber": sequence,
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": 1764840000.0 + offset / 1000,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard}:{sequence}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/ingest",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/events",
            }
        )
    return {"Records": records}
