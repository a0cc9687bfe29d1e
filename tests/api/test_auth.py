"""Who may call what: tokens checked before the function runs, users confined to themselves."""

from __future__ import annotations

import pytest

from local_stack.auth import mint_token
from recsys.adapters.dynamodb import DynamoDBUserStateStore
from tests.api.conftest import Api, event, unique_user

pytestmark = pytest.mark.integration


def _state_exists(api: Api, user: str) -> bool:
    store = DynamoDBUserStateStore(api.stack.client("dynamodb"), api.stack.resources.table_name)
    return store.get(user) is not None


@pytest.fixture(scope="module")
def user_b(api: Api) -> str:
    """A user with a stored state, whom other users will try to read and delete."""
    user = unique_user("bea")
    assert api.send_events(user, [event(user, "i0")]).status == 202
    api.wait_for_ingest()
    assert _state_exists(api, user)
    return user


def test_request_without_a_token_is_refused_before_the_function(api: Api) -> None:
    # GIVEN a guarded route
    # WHEN it is called without a token
    reply = api.call("GET", "/me/recommendations")

    # THEN API Gateway's part answers 401 with a JSON error
    assert reply.status == 401
    assert reply.json()["error"] == "unauthorized"


def test_expired_token_is_refused(api: Api) -> None:
    # GIVEN a token that expired a second ago
    headers = {"Authorization": f"Bearer {mint_token('alice', ttl_s=-1)}"}

    # WHEN it is used
    reply = api.call("GET", "/me/recommendations", headers=headers)

    # THEN it is refused like no token
    assert reply.status == 401


def test_the_callers_identity_comes_from_the_token(api: Api) -> None:
    # GIVEN a token of alice
    # WHEN alice asks for her own recommendations
    reply = api.call("GET", "/me/recommendations", user="alice")

    # THEN the list is hers
    assert reply.status == 200
    assert reply.json()["user_id"] == "alice"


def test_user_a_cannot_read_user_bs_recommendations(api: Api, user_b: str) -> None:
    # GIVEN user A, and user B who has a state
    # WHEN A asks for B's recommendations by B's id
    reply = api.call("GET", f"/users/{user_b}/recommendations", user="user-a")

    # THEN A is refused, and learns nothing about B's list
    assert reply.status == 403
    assert reply.json()["error"] == "forbidden"
    assert user_b not in reply.body.decode()


def test_admin_cannot_read_another_users_recommendations_either(api: Api, user_b: str) -> None:
    # GIVEN an admin
    # WHEN the admin asks for B's recommendations
    reply = api.call("GET", f"/users/{user_b}/recommendations", user="root", admin=True)

    # THEN lists stay private to their user
    assert reply.status == 403


def test_a_user_may_read_their_own_recommendations_by_id(api: Api, user_b: str) -> None:
    # GIVEN user B
    # WHEN B asks for B's recommendations by id
    reply = api.call("GET", f"/users/{user_b}/recommendations", user=user_b)

    # THEN B gets them
    assert reply.status == 200
    assert reply.json()["user_id"] == user_b


def test_user_a_cannot_delete_user_b(api: Api, user_b: str) -> None:
    # GIVEN user A, and user B who has a state
    # WHEN A asks to delete B
    reply = api.call("DELETE", f"/users/{user_b}", user="user-a")

    # THEN A is refused and B's state is untouched
    assert reply.status == 403
    assert _state_exists(api, user_b)


def test_admin_may_delete_another_user(api: Api) -> None:
    # GIVEN a user with a state
    user = unique_user("cleo")
    api.send_events(user, [event(user, "i1")])
    api.wait_for_ingest()

    # WHEN an admin deletes that user
    reply = api.call("DELETE", f"/users/{user}", user="root", admin=True)

    # THEN the state is gone
    assert reply.status == 200
    assert reply.json()["state_deleted"] is True
    assert not _state_exists(api, user)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/items/i2", {"categories": ["a"]}),
        ("DELETE", "/items/i2", None),
    ],
)
def test_catalogue_writes_need_an_admin(
    api: Api, method: str, path: str, body: dict[str, object] | None
) -> None:
    # GIVEN a user who is not in the admin group
    # WHEN they try to change the catalogue
    reply = api.call(method, path, user="alice", json_body=body)

    # THEN they are refused
    assert reply.status == 403
    assert reply.json()["error"] == "forbidden"


def test_health_needs_no_token(api: Api) -> None:
    # GIVEN the open health route
    # WHEN it is called without a token
    reply = api.call("GET", "/health")

    # THEN it answers
    assert reply.status == 200
