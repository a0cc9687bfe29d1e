"""POST /events over HTTP: per-event outcome, the stream's partition key, no double counting."""

from __future__ import annotations

import json
from typing import Any

import pytest

from recsys.adapters.dynamodb import DynamoDBUserStateStore
from tests.api.conftest import Api, event, unique_user

pytestmark = pytest.mark.integration


def _history_ids(api: Api, user: str) -> list[str]:
    store = DynamoDBUserStateStore(api.stack.client("dynamodb"), api.stack.resources.table_name)
    stored = store.get(user)
    return sorted(entry.event_id for entry in stored.state.history) if stored else []


def _stream_records(api: Api) -> list[dict[str, Any]]:
    kinesis = api.stack.client("kinesis")
    stream = api.stack.resources.stream_name
    records = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for _ in range(100):
            page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            records.extend(page["Records"])
            if not page["Records"] or page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page["NextShardIterator"]
    return records


def test_valid_events_are_accepted_and_invalid_ones_rejected_with_reasons(api: Api) -> None:
    # GIVEN a batch with a valid event, an event of someone else, a malformed event and a
    # repeat of the first event's id
    user = unique_user("eve")
    first = event(user, "i0")
    batch = [
        first,
        event("someone-else", "i1"),
        {"event_id": "e-bad", "user_id": user, "item_id": "i2", "event_type": "stare"},
        dict(first, item_id="i3"),
    ]

    # WHEN it is sent
    reply = api.send_events(user, batch)

    # THEN only the first is accepted, and each other one is rejected with why
    body = reply.json()
    assert reply.status == 202
    assert [entry["index"] for entry in body["accepted"]] == [0]
    reasons = {entry["index"]: entry["reason"] for entry in body["rejected"]}
    assert reasons[1].startswith("user_id:")
    assert "event_type" in reasons[2] and "timestamp" in reasons[2]
    assert reasons[3].startswith("event_id:")
    assert not any(entry["retryable"] for entry in body["rejected"])


def test_accepted_events_are_on_the_stream_keyed_by_user(api: Api) -> None:
    # GIVEN a user's event
    user = unique_user("finn")
    sent = event(user, "i4")

    # WHEN it is accepted
    accepted = api.send_events(user, [sent]).json()["accepted"]

    # THEN the stream holds it, partitioned by the user id, at the sequence number given
    (record,) = [
        r for r in _stream_records(api) if json.loads(r["Data"])["event_id"] == sent["event_id"]
    ]
    assert record["PartitionKey"] == user
    assert record["SequenceNumber"] == accepted[0]["sequence_number"]


def test_sending_the_same_events_twice_counts_them_once(api: Api) -> None:
    # GIVEN two events of a user, sent and applied once
    user = unique_user("gus")
    batch = [event(user, "i0"), event(user, "i6")]
    api.send_events(user, batch)
    api.wait_for_ingest()
    once = _history_ids(api, user)

    # WHEN the app retries the same batch (same event ids)
    retry = api.send_events(user, batch)
    api.wait_for_ingest()

    # THEN the retry is accepted, and the user's state is as after the first send
    assert len(retry.json()["accepted"]) == 2
    assert once == sorted(entry["event_id"] for entry in batch)
    assert _history_ids(api, user) == once


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": []}, "events"),
        ({"events": [{}] * 101}, "events"),
        ({"events": "not a list"}, "events"),
        ({"events": [{}], "source": "app"}, "source"),
        ({}, "events"),
    ],
    ids=["empty", "101-events", "wrong-type", "unknown-field", "missing"],
)
def test_bad_batch_answers_400_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    # GIVEN a batch a client got wrong as a whole
    # WHEN it is sent
    reply = api.call("POST", "/events", user="alice", json_body=body)

    # THEN it is a 400 naming the field
    assert reply.status == 400
    assert reply.json()["fields"][0]["field"] == field


def test_events_need_json(api: Api) -> None:
    # GIVEN a JSON body labelled as form data
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    # WHEN it is sent
    reply = api.call("POST", "/events", user="alice", raw_body=b'{"events": []}', headers=headers)

    # THEN it is a 415
    assert reply.status == 415
