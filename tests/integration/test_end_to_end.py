"""The product end to end on the local stack: real HTTP, real Kinesis calls, real handlers.

An event goes in through Kinesis; that user's list, fetched over HTTP, changes.
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local_stack.auth import auth_header
from local_stack.stack import LocalStack
from recsys.adapters.s3 import S3CatalogSource, S3EventArchive
from recsys.catalog import CatalogItem

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _get(url: str, user: str) -> dict[str, Any]:
    """GET as ``user``, with a token the local API accepts in place of Cognito's."""
    request = urllib.request.Request(url, headers=auth_header(user))
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - 127.0.0.1 only
        return json.loads(response.read())


def _event(event_id: str, user: str, item: int, when: datetime) -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "user_id": user,
            "item_id": f"item-{item}",
            "event_type": "purchase",
            "timestamp": when.isoformat(),
        }
    ).encode()


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Any:
    log = tmp_path_factory.mktemp("stack") / "functions.log"
    with LocalStack(REPO, api_port=0, function_log=log) as running:
        yield running


def _seed_and_train(stack: LocalStack) -> None:
    # Two taste groups over 20 items: even users buy even items, odd users odd items.
    today = datetime.now(UTC).date()
    start = datetime.combine(today, datetime.min.time(), tzinfo=UTC) - timedelta(days=3)
    lines = [
        _event(f"seed-{u}-{i}", f"u{u}", i, start + timedelta(minutes=u * 20 + i))
        for u in range(40)
        for i in range(20)
        if i % 2 == u % 2 and (u + i) % 3
    ]
    s3 = stack.client("s3")
    S3EventArchive(s3, stack.resources.archive_bucket).write_lines(today, lines, "seed")
    S3CatalogSource(s3, stack.resources.model_bucket).write_catalog(
        CatalogItem(item_id=f"item-{i}", categories=("even" if i % 2 == 0 else "odd",))
        for i in range(20)
    )
    report = stack.run_schedule("TrainFunction")
    assert report["published"], report


def test_an_event_through_kinesis_changes_that_users_list_over_http(stack):
    # GIVEN a trained model and a brand-new user, who gets popular items
    _seed_and_train(stack)
    url = f"{stack.api_url}/users/newcomer/recommendations?k=5"
    before = _get(url, "newcomer")
    assert before["source"] == "popular" and before["last_sequence"] is None

    # WHEN that user buys three odd items, through Kinesis
    now = datetime.now(UTC) - timedelta(minutes=1)
    kinesis = stack.client("kinesis")
    for n, item in enumerate((1, 3, 5)):
        kinesis.put_record(
            StreamName=stack.resources.stream_name,
            PartitionKey="newcomer",
            Data=_event(f"new-{n}", "newcomer", item, now + timedelta(seconds=n)),
        )

    # THEN within seconds the list over HTTP is personalized, odd-leaning, without them
    deadline = time.monotonic() + 30
    after = before
    while time.monotonic() < deadline and after["last_sequence"] is None:
        time.sleep(0.1)
        after = _get(url, "newcomer")
    items = [item["item_id"] for item in after["items"]]
    assert after["source"] == "personalized"
    assert not {"item-1", "item-3", "item-5"} & set(items)
    assert sum(int(item.split("-")[1]) % 2 for item in items) >= 4
    assert items != [item["item_id"] for item in before["items"]]


def test_a_poison_record_lands_in_the_failure_queue_and_later_events_still_apply(stack):
    kinesis = stack.client("kinesis")
    now = datetime.now(UTC) - timedelta(minutes=1)
    kinesis.put_record(StreamName=stack.resources.stream_name, PartitionKey="p", Data=b"{oops")
    kinesis.put_record(
        StreamName=stack.resources.stream_name, PartitionKey="p", Data=_event("p-1", "p", 2, now)
    )
    stack.wait_until_caught_up(timeout_s=30)

    assert _get(f"{stack.api_url}/users/p/recommendations?k=3", "p")["source"] == "personalized"
    sqs = stack.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=stack.resources.failure_queue_url, MaxNumberOfMessages=10
    ).get("Messages", [])
    assert any("not valid UTF-8 JSON" in json.loads(m["Body"])["reason"] for m in messages)


def test_archive_holds_what_went_through_the_stream(stack):
    stack.wait_until_caught_up(timeout_s=30)
    stack.firehose.flush()
    today = date.today()
    lines = list(
        S3EventArchive(stack.client("s3"), stack.resources.archive_bucket).read_lines(
            today - timedelta(days=1), today + timedelta(days=1)
        )
    )
    ids = {json.loads(line).get("event_id") for line in lines if line.startswith(b'{"')}
    assert {"new-0", "new-1", "new-2", "p-1"} <= ids
