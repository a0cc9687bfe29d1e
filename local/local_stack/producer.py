"""Putting events on the stream the way a producer should: user id as partition key, in
order, with the records Kinesis refused retried."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from recsys.events import Event

PUT_BATCH = 500  # PutRecords' own limit per call


def put_events(kinesis: Any, stream_name: str, events: Iterable[Event]) -> list[str]:
    """PutRecords with the user id as partition key; returns the sequence numbers.

    Raises
    ------
    RuntimeError
        When Kinesis refuses some records ten times in a row.
    """
    sequences: list[str] = []
    batch: list[Event] = []
    for event in events:
        batch.append(event)
        if len(batch) == PUT_BATCH:
            sequences += _put_batch(kinesis, stream_name, batch)
            batch = []
    if batch:
        sequences += _put_batch(kinesis, stream_name, batch)
    return sequences


def _put_batch(kinesis: Any, stream_name: str, events: list[Event]) -> list[str]:
    pending = [
        {"Data": event.model_dump_json().encode(), "PartitionKey": event.user_id}
        for event in events
    ]
    sequences: list[str] = []
    for attempt in range(10):
        response = kinesis.put_records(StreamName=stream_name, Records=pending)
        results = response["Records"]
        sequences += [result["SequenceNumber"] for result in results if "SequenceNumber" in result]
        pending = [
            record for record, result in zip(pending, results, strict=True) if "ErrorCode" in result
        ]
        if not pending:
            return sequences
        time.sleep(0.05 * 2**attempt)
    raise RuntimeError(f"Kinesis refused {len(pending)} records ten times")
