"""The API's stores against moto: catalogue edits, deletion markers, the event producer.

Tables are keyed as ``template.yaml`` keys them.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient

from local_stack.template import load_template, table_key_schema
from recsys.adapters.catalog_table import (
    AVAILABILITY_KEY,
    DynamoDBCatalogStore,
    OverlaidCatalogSource,
)
from recsys.adapters.deletions import DynamoDBDeletionRegistry
from recsys.adapters.kinesis import KinesisEventPublisher
from recsys.catalog import CatalogItem
from recsys.ports import Availability
from tests.adapters.conftest import REGION, TEMPLATE_PATH
from tests.factories import make_event
from tests.fakes import InMemoryCatalog

STREAM = "recsys-test-events"


def _table(client: BaseClient, logical_id: str) -> str:
    key_schema, definitions = table_key_schema(load_template(TEMPLATE_PATH), logical_id)
    name = f"recsys-test-{logical_id.lower()}"
    client.create_table(
        TableName=name,
        KeySchema=key_schema,
        AttributeDefinitions=definitions,
        BillingMode="PAY_PER_REQUEST",
    )
    return name


@pytest.fixture
def catalog(dynamodb_client: BaseClient) -> DynamoDBCatalogStore:
    return DynamoDBCatalogStore(
        dynamodb_client, _table(dynamodb_client, "CatalogTable"), clock=lambda: 1_800_000_000.0
    )


@pytest.fixture
def deletions(dynamodb_client: BaseClient) -> DynamoDBDeletionRegistry:
    return DynamoDBDeletionRegistry(
        dynamodb_client, _table(dynamodb_client, "DeletedUsersTable"), retention_days=400
    )


@pytest.fixture
def kinesis(mocked_aws: None) -> BaseClient:
    client = boto3.client("kinesis", region_name=REGION)
    client.create_stream(StreamName=STREAM, ShardCount=2)
    return client


# ----------------------------------------------------------------------- catalogue ---


def test_entry_round_trips_with_categories_in_order_and_attributes(
    catalog: DynamoDBCatalogStore,
) -> None:
    # GIVEN an entry with a title, ordered categories and attributes
    item = CatalogItem(
        item_id="lamp", title="Lamp", categories=("light", "home"), attributes={"brand": "acme"}
    )

    # WHEN it is stored and read back
    catalog.put(item)

    # THEN it is the same entry
    assert catalog.get("lamp") == item
    assert catalog.get("no-such-item") is None


def test_hiding_and_showing_move_the_item_between_the_sets(
    catalog: DynamoDBCatalogStore,
) -> None:
    # GIVEN two hidden items
    catalog.put(CatalogItem(item_id="a", available=False))
    catalog.put(CatalogItem(item_id="b", available=False))

    # WHEN one is shown again
    catalog.put(CatalogItem(item_id="b", available=True))

    # THEN one read says which is hidden and which shown
    assert catalog.availability() == Availability(hidden=frozenset({"a"}), shown=frozenset({"b"}))


def test_deleting_an_entry_hides_the_item(catalog: DynamoDBCatalogStore) -> None:
    # GIVEN a shown item with an entry
    catalog.put(CatalogItem(item_id="a"))

    # WHEN it is deleted, twice
    first, second = catalog.delete("a"), catalog.delete("a")

    # THEN the entry is gone and the item hidden; the second delete found nothing
    assert (first, second) == (True, False)
    assert catalog.get("a") is None
    assert catalog.availability() == Availability(hidden=frozenset({"a"}))


def test_empty_table_has_nothing_hidden(catalog: DynamoDBCatalogStore) -> None:
    assert catalog.availability() == Availability()


def test_catalogue_read_for_training_has_entries_and_hidden_items_without_one(
    catalog: DynamoDBCatalogStore,
) -> None:
    # GIVEN an entry, and a deleted item
    catalog.put(CatalogItem(item_id="b", categories=("x",)))
    catalog.put(CatalogItem(item_id="a"))
    catalog.delete("a")

    # WHEN the whole catalogue is read
    items = catalog.read_catalog()

    # THEN the entry is there and the deleted item comes as unavailable; not the aggregate
    assert items == [
        CatalogItem(item_id="a", available=False),
        CatalogItem(item_id="b", categories=("x",)),
    ]
    assert AVAILABILITY_KEY not in {item.item_id for item in items}


def test_overlay_entries_replace_the_base_entries_whole() -> None:
    # GIVEN a bulk catalogue and an admin's entries, one for an item the bulk one has
    base = InMemoryCatalog(
        [CatalogItem(item_id="a", categories=("old",)), CatalogItem(item_id="b")]
    )
    overlay = InMemoryCatalog(
        [CatalogItem(item_id="a", available=False), CatalogItem(item_id="c", title="new")]
    )

    # WHEN they are read together
    merged = OverlaidCatalogSource(base=base, overlay=overlay).read_catalog()

    # THEN the admin's entry wins for a, b stays, c is added
    assert merged == [
        CatalogItem(item_id="a", available=False),
        CatalogItem(item_id="b"),
        CatalogItem(item_id="c", title="new"),
    ]


# ------------------------------------------------------------------------ deletions ---


def test_markers_are_read_back_for_the_users_that_have_one(
    deletions: DynamoDBDeletionRegistry,
) -> None:
    # GIVEN two deleted users
    deletions.record("u1", 1_000)
    deletions.record("u2", 2_000)

    # WHEN a batch of users is looked up, and every marker is listed
    found = deletions.deleted_at(["u1", "u3", "u1"])
    everything = deletions.all_deletions()

    # THEN only the deleted ones come back, with their times
    assert found == {"u1": 1_000}
    assert everything == {"u1": 1_000, "u2": 2_000}


def test_marker_expires_a_retention_period_after_the_deletion(
    deletions: DynamoDBDeletionRegistry, dynamodb_client: BaseClient
) -> None:
    # GIVEN a deletion at t = 1,000,000 s
    deletions.record("u1", 1_000_000_000)

    # WHEN its item is read raw
    item = dynamodb_client.get_item(
        TableName="recsys-test-deleteduserstable", Key={"user_id": {"S": "u1"}}
    )["Item"]

    # THEN its TTL attribute is 400 days later, in epoch seconds
    assert int(item["expires_at"]["N"]) == 1_000_000 + 400 * 86_400


def test_looking_up_more_than_a_batch_of_users_reads_them_all(
    deletions: DynamoDBDeletionRegistry,
) -> None:
    # GIVEN 250 deleted users (BatchGetItem takes 100 keys at a time)
    for n in range(250):
        deletions.record(f"u{n}", n)

    # WHEN all of them are looked up at once
    found = deletions.deleted_at([f"u{n}" for n in range(250)])

    # THEN every marker is found
    assert len(found) == 250


# --------------------------------------------------------------------------- events ---


def _stream_records(client: BaseClient) -> list[dict[str, Any]]:
    records = []
    for shard in client.list_shards(StreamName=STREAM)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records.extend(client.get_records(ShardIterator=iterator)["Records"])
    return records


def test_events_go_on_the_stream_keyed_by_user_as_parseable_json(kinesis: BaseClient) -> None:
    # GIVEN events of two users
    events = [make_event("a", user_id="u1"), make_event("b", user_id="u2")]

    # WHEN they are published
    outcomes = KinesisEventPublisher(kinesis, STREAM).publish(events)

    # THEN each got a sequence number, and the stream holds each under its user's key
    assert all(outcome.sequence_number for outcome in outcomes)
    stored = {
        record["PartitionKey"]: json.loads(record["Data"]) for record in _stream_records(kinesis)
    }
    assert {key: value["event_id"] for key, value in stored.items()} == {"u1": "a", "u2": "b"}
    assert stored["u1"]["timestamp"].endswith("Z")


class _RefusingFirstAttempts:
    """A Kinesis client whose PutRecords refuses event "b" on its first ``times`` calls."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.calls: list[list[str]] = []

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        event_ids = [json.loads(record["Data"])["event_id"] for record in Records]
        self.calls.append(event_ids)
        results = []
        for index, event_id in enumerate(event_ids):
            if event_id == "b" and len(self.calls) <= self.times:
                results.append({"ErrorCode": "ProvisionedThroughputExceededException"})
            else:
                results.append({"SequenceNumber": str(len(self.calls) * 10 + index)})
        return {"Records": results, "FailedRecordCount": 0}


def test_records_the_stream_refused_are_sent_again_alone() -> None:
    # GIVEN a stream that refuses event b on the first call only
    client = _RefusingFirstAttempts(times=1)
    publisher = KinesisEventPublisher(client, STREAM, sleep=lambda _: None)

    # WHEN three events are published
    outcomes = publisher.publish([make_event("a"), make_event("b"), make_event("c")])

    # THEN the refused one went again by itself and every event is on the stream
    assert client.calls == [["a", "b", "c"], ["b"]]
    assert [outcome.sequence_number for outcome in outcomes] == ["10", "20", "12"]


def test_record_still_refused_after_every_attempt_comes_back_as_an_error() -> None:
    # GIVEN a stream that always refuses event b
    client = _RefusingFirstAttempts(times=99)
    publisher = KinesisEventPublisher(client, STREAM, max_attempts=3, sleep=lambda _: None)

    # WHEN two events are published
    outcomes = publisher.publish([make_event("a"), make_event("b")])

    # THEN the first is on the stream and the second reports the stream's error
    assert outcomes[0].sequence_number == "10"
    assert outcomes[1].error == "ProvisionedThroughputExceededException"
    assert len(client.calls) == 3
