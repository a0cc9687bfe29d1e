"""DELETE /me and /users/{userId} with their receipt and aftermath; GET /health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recsys.adapters.deletions import DynamoDBDeletionRegistry
from recsys.adapters.dynamodb import DynamoDBUserStateStore
from tests.api.conftest import Api, event, unique_user

pytestmark = pytest.mark.integration


def _state_store(api: Api) -> DynamoDBUserStateStore:
    return DynamoDBUserStateStore(api.stack.client("dynamodb"), api.stack.resources.table_name)


def _user_with_history(api: Api, prefix: str, items: list[str]) -> str:
    user = unique_user(prefix)
    api.send_events(user, [event(user, item) for item in items])
    api.wait_for_ingest()
    assert _state_store(api).get(user) is not None
    return user


def test_deleting_oneself_removes_the_state_and_returns_a_receipt(api: Api) -> None:
    # GIVEN a user with three events in their state
    user = _user_with_history(api, "kim", ["i0", "i1", "i5"])

    # WHEN they delete themselves
    reply = api.call("DELETE", "/me", user=user)

    # THEN the receipt says what went and from when on their events are excluded, and
    # their next list is a newcomer's
    receipt = reply.json()
    assert reply.status == 200
    assert receipt["user_id"] == user
    assert receipt["state_deleted"] is True
    assert receipt["history_events_deleted"] == 3
    assert receipt["excluded_from_training"] == f"events up to {receipt['deleted_at']}"
    assert _state_store(api).get(user) is None
    listed = api.call("GET", "/me/recommendations", user=user).json()
    assert (listed["source"], listed["last_sequence"]) == ("popular", None)


def test_deletion_leaves_a_marker_for_training(api: Api) -> None:
    # GIVEN a user with history
    user = _user_with_history(api, "lou", ["i2"])

    # WHEN they are deleted by id
    receipt = api.call("DELETE", f"/users/{user}", user=user).json()

    # THEN the deletion markers hold the user at the receipt's time
    table = api.stack.resources.refs["DeletedUsersTable"]
    markers = DynamoDBDeletionRegistry(api.stack.client("dynamodb"), table).deleted_at([user])
    deleted_at = datetime.fromisoformat(receipt["deleted_at"])
    assert markers == {user: int(deleted_at.timestamp() * 1000)}


def test_old_events_still_arriving_do_not_bring_a_deleted_user_back(api: Api) -> None:
    # GIVEN a deleted user
    user = _user_with_history(api, "max", ["i0"])
    api.call("DELETE", "/me", user=user)

    # WHEN an event stamped before the deletion arrives late (a retrying app)
    late = event(user, "i3", timestamp=(datetime.now(UTC) - timedelta(hours=1)).isoformat())
    assert len(api.send_events(user, [late]).json()["accepted"]) == 1
    api.wait_for_ingest()

    # THEN ingest drops it: the user has no state again
    assert _state_store(api).get(user) is None


def test_new_activity_after_a_deletion_is_used(api: Api) -> None:
    # GIVEN a deleted user
    user = _user_with_history(api, "ned", ["i0"])
    receipt = api.call("DELETE", "/me", user=user).json()

    # WHEN they come back and act after the deletion
    after = datetime.fromisoformat(receipt["deleted_at"]) + timedelta(milliseconds=5)
    api.send_events(user, [event(user, "i7", timestamp=after.isoformat())])
    api.wait_for_ingest()

    # THEN that event starts a new history
    stored = _state_store(api).get(user)
    assert stored is not None
    assert [entry.item_id for entry in stored.state.history] == ["i7"]


def test_deleting_a_user_never_seen_still_gives_a_receipt(api: Api) -> None:
    # GIVEN a user with no state
    user = unique_user("oz")

    # WHEN they delete themselves
    receipt = api.call("DELETE", "/me", user=user).json()

    # THEN nothing was deleted but they are excluded from now on
    assert (receipt["state_deleted"], receipt["history_events_deleted"]) == (False, 0)


def test_health_reports_the_serving_models_version_and_age(api: Api) -> None:
    # GIVEN the model published when the stack started
    # WHEN health is asked
    body = api.call("GET", "/health").json()

    # THEN it reports that model, a few seconds old
    assert body["status"] == "ok"
    assert body["model_version"]
    assert 0 <= body["model_age_seconds"] < 3600
    assert datetime.fromisoformat(body["created_at"]) <= datetime.now(UTC)


def test_health_refuses_unknown_parameters(api: Api) -> None:
    # GIVEN a health probe with a parameter health does not take
    # WHEN it is sent
    reply = api.call("GET", "/health", query={"verbose": "1"})

    # THEN it is a 400 naming it
    assert reply.status == 400
    assert reply.json()["fields"][0]["field"] == "verbose"
