"""DynamoDBUserStateStore against moto: binary encoding, optimistic locking, deletion."""

from __future__ import annotations

import numpy as np
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from recsys.adapters.dynamodb import DynamoDBUserStateStore
from recsys.errors import StateCorruptError
from recsys.events import EventType
from recsys.ports import VersionConflict
from recsys.state import HistoryEntry, UserState
from tests.adapters.conftest import RecordingClient
from tests.factories import make_event

FACTORS = 1024
FIXED_NOW_SECONDS = 1_790_000_000.5


def _history() -> tuple[HistoryEntry, ...]:
    return (
        HistoryEntry.from_event(make_event("e1", item_id="i1", minutes=0)),
        HistoryEntry.from_event(
            make_event("e2", item_id="i2", event_type=EventType.RATING, value=4.5, minutes=1)
        ),
    )


def _folded_state(user_id: str = "u1") -> UserState:
    vector = np.random.default_rng(7).standard_normal(FACTORS).astype(np.float32)
    return UserState(
        user_id=user_id,
        history=_history(),
        vector=vector,
        model_version="20261101T000000Z-abcdef12",
        last_sequence="49590338271490256608559692538361571095921575989136588898",
    )


def _raw_item(client: BaseClient, table: str, user_id: str) -> dict:
    response = client.get_item(TableName=table, Key={"user_id": {"S": user_id}})
    item: dict = response["Item"]
    return item


@pytest.fixture
def store(dynamodb_client: BaseClient, state_table: str) -> DynamoDBUserStateStore:
    return DynamoDBUserStateStore(dynamodb_client, state_table, clock=lambda: FIXED_NOW_SECONDS)


def test_unknown_user_reads_as_none(store):
    # GIVEN an empty table
    # WHEN a user who was never written is read
    stored = store.get("nobody")

    # THEN there is no state
    assert stored is None


def test_state_without_vector_round_trips(store):
    # GIVEN a user with a history but no folded vector
    state = UserState(user_id="u1", history=_history())

    # WHEN it is written and read back
    store.put(state, expected_version=0)
    stored = store.get("u1")

    # THEN every field comes back as written
    assert stored is not None
    assert stored.state.user_id == "u1"
    assert stored.state.history == state.history
    assert stored.state.vector is None
    assert stored.state.model_version is None
    assert stored.state.last_sequence is None


def test_state_with_vector_round_trips(store):
    # GIVEN a folded user
    state = _folded_state()

    # WHEN it is written and read back
    store.put(state, expected_version=0)
    stored = store.get("u1")

    # THEN the vector is bit-identical float32 and the other fields match
    assert stored is not None
    assert stored.state.vector is not None
    assert stored.state.vector.dtype == np.float32
    np.testing.assert_array_equal(stored.state.vector, state.vector)
    assert stored.state.history == state.history
    assert stored.state.model_version == state.model_version
    assert stored.state.last_sequence == state.last_sequence


def test_vector_is_stored_as_binary_float32(store, dynamodb_client, state_table):
    # GIVEN a folded user with a vector of FACTORS floats
    state = _folded_state()

    # WHEN it is written
    store.put(state, expected_version=0)

    # THEN the raw attribute is one binary value of 4 bytes per factor, not a list of numbers
    vector = _raw_item(dynamodb_client, state_table, "u1")["vector"]
    assert list(vector) == ["B"]
    assert len(vector["B"]) == 4 * FACTORS


def test_item_carries_schema_version_and_write_time(store, dynamodb_client, state_table):
    # GIVEN a store whose clock is pinned
    # WHEN a user without a vector is written
    store.put(UserState(user_id="u1", history=_history()), expected_version=0)

    # THEN the item has the binary history, the bookkeeping numbers and no unset fields
    item = _raw_item(dynamodb_client, state_table, "u1")
    assert set(item) == {"user_id", "history", "version", "updated_at", "schema"}
    assert list(item["history"]) == ["B"]
    assert item["schema"] == {"N": "1"}
    assert item["version"] == {"N": "1"}
    assert item["updated_at"] == {"N": str(int(FIXED_NOW_SECONDS * 1000))}


def test_each_put_increments_the_version(store):
    # GIVEN a user written once
    first = store.put(_folded_state(), expected_version=0)

    # WHEN it is written again at the version just returned
    second = store.put(_folded_state(), expected_version=first)

    # THEN versions count writes and a read sees the latest
    stored = store.get("u1")
    assert (first, second) == (1, 2)
    assert stored is not None
    assert stored.version == 2


def test_put_at_a_stale_version_conflicts_and_changes_nothing(store, dynamodb_client, state_table):
    # GIVEN a user written twice, so the stored version is 2
    store.put(UserState(user_id="u1", history=_history()[:1]), expected_version=0)
    store.put(UserState(user_id="u1", history=_history()), expected_version=1)
    before = _raw_item(dynamodb_client, state_table, "u1")

    # WHEN a writer that read version 1 writes
    with pytest.raises(VersionConflict):
        store.put(_folded_state(), expected_version=1)

    # THEN the stored item is exactly as before
    assert _raw_item(dynamodb_client, state_table, "u1") == before


def test_put_expecting_a_new_user_conflicts_when_the_user_exists(store):
    # GIVEN a user already written
    store.put(UserState(user_id="u1", history=_history()), expected_version=0)

    # WHEN another writer also believes the user is new
    # THEN it loses
    with pytest.raises(VersionConflict):
        store.put(_folded_state(), expected_version=0)


def test_put_expecting_a_version_of_a_missing_user_conflicts(store):
    # GIVEN an empty table
    # WHEN a writer expects version 3 of a user that does not exist
    # THEN it conflicts rather than creating the user
    with pytest.raises(VersionConflict):
        store.put(_folded_state(), expected_version=3)

    assert store.get("u1") is None


def test_other_service_errors_propagate_unchanged(dynamodb_client, state_table):
    # GIVEN a store pointed at a table that does not exist
    store = DynamoDBUserStateStore(dynamodb_client, "no-such-table")

    # WHEN a state is written
    # THEN the service error reaches the caller as it is
    with pytest.raises(ClientError) as raised:
        store.put(_folded_state(), expected_version=0)

    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_reads_are_strongly_consistent(dynamodb_client, state_table):
    # GIVEN a store whose client calls are recorded
    recording = RecordingClient(dynamodb_client)
    store = DynamoDBUserStateStore(recording, state_table)

    # WHEN a user is read
    store.get("u1")

    # THEN the read asked for strong consistency
    ((operation, arguments),) = recording.calls
    assert operation == "get_item"
    assert arguments["ConsistentRead"] is True


def test_deleting_a_stored_user_removes_it_and_returns_true(store):
    # GIVEN a stored user
    store.put(_folded_state(), expected_version=0)

    # WHEN it is deleted
    deleted = store.delete("u1")

    # THEN the call says so and the user reads as never seen
    assert deleted is True
    assert store.get("u1") is None


def test_deleting_an_unknown_user_returns_false(store):
    # GIVEN an empty table
    # WHEN a user who was never written is deleted
    deleted = store.delete("nobody")

    # THEN nothing was there to delete
    assert deleted is False


def test_undecodable_history_raises_state_corrupt_error_naming_the_user(
    store, dynamodb_client, state_table
):
    # GIVEN an item whose history is not an encoded history
    dynamodb_client.put_item(
        TableName=state_table,
        Item={
            "user_id": {"S": "u-broken"},
            "history": {"B": b"\x09not a history"},
            "version": {"N": "1"},
            "updated_at": {"N": "0"},
            "schema": {"N": "1"},
        },
    )

    # WHEN it is read
    # THEN the error names the user
    with pytest.raises(StateCorruptError, match="u-broken"):
        store.get("u-broken")


def test_item_missing_its_version_raises_state_corrupt_error(store, dynamodb_client, state_table):
    # GIVEN an item written by something else, without the lock attribute
    dynamodb_client.put_item(
        TableName=state_table,
        Item={"user_id": {"S": "u-odd"}, "history": {"B": b"\x01\x00\x00"}, "schema": {"N": "1"}},
    )

    # WHEN it is read
    # THEN it is reported as corrupt, not as a KeyError
    with pytest.raises(StateCorruptError, match="u-odd"):
        store.get("u-odd")
