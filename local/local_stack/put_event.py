"""Put interaction events on the local event stream, without the AWS CLI.

Examples
--------
One event built from flags, one given as JSON, and a file of JSON lines::

    python -m local_stack.put_event --user u1 --item i42 --type click
    python -m local_stack.put_event '{"event_id": "e1", "user_id": "u1", ...}'
    python -m local_stack.put_event < events.jsonl

Each record's partition key is the event's ``user_id``, as the template asks of every
producer, so one user's events stay in order on one shard.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from local_stack.moto_server import make_client
from local_stack.stack import DEFAULT_PREFIX
from local_stack.template import STREAM_ID, local_name

DEFAULT_ENDPOINT_URL = "http://127.0.0.1:5000"


def build_event(user_id: str, item_id: str, event_type: str) -> dict[str, Any]:
    """Build an event of now with a fresh ``event_id``."""
    return {
        "event_id": uuid.uuid4().hex,
        "user_id": user_id,
        "item_id": item_id,
        "event_type": event_type,
        "timestamp": int(time.time() * 1000),
    }


def put_events(
    events: Iterable[dict[str, Any]], *, endpoint_url: str, stream_name: str
) -> list[tuple[str, str]]:
    """Put each event as one JSON record keyed by its ``user_id``.

    Returns
    -------
    list of (shard id, sequence number)
        Where each record landed, in order.

    Raises
    ------
    ValueError
        If an event has no string ``user_id``.
    """
    kinesis = make_client("kinesis", endpoint_url)
    placed = []
    try:
        for event in events:
            user_id = event.get("user_id")
            if not isinstance(user_id, str) or not user_id:
                raise ValueError(f"event has no user_id to use as partition key: {event}")

            response = kinesis.put_record(
                StreamName=stream_name,
                Data=json.dumps(event, separators=(",", ":")).encode("utf-8"),
                PartitionKey=user_id,
            )
            placed.append((response["ShardId"], response["SequenceNumber"]))
    finally:
        kinesis.close()

    return placed


def _events_from(arguments: argparse.Namespace) -> Iterable[dict[str, Any]]:
    if arguments.user or arguments.item:
        if not (arguments.user and arguments.item):
            raise SystemExit("--user and --item go together")
        yield build_event(arguments.user, arguments.item, arguments.type)

    sources: Iterable[str] = arguments.events
    if not arguments.events and not (arguments.user or arguments.item):
        sources = sys.stdin
    for text in sources:
        if text.strip():
            yield json.loads(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m local_stack.put_event", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("events", nargs="*", help="events as JSON; none reads JSON lines")
    parser.add_argument("--endpoint-url", default=DEFAULT_ENDPOINT_URL, help="moto server")
    parser.add_argument(
        "--stream", default=local_name(DEFAULT_PREFIX, STREAM_ID), help="stream name"
    )
    parser.add_argument("--user", help="build an event for this user id")
    parser.add_argument("--item", help="... on this item id")
    parser.add_argument("--type", default="view", help="... of this event type (view)")
    arguments = parser.parse_args(argv)

    placed = put_events(
        _events_from(arguments), endpoint_url=arguments.endpoint_url, stream_name=arguments.stream
    )
    for shard_id, sequence_number in placed:
        print(f"{shard_id} {sequence_number}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
