"""GET /me/recommendations over HTTP: the list, its fields, the filters, and bad input."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api, event, unique_user

pytestmark = pytest.mark.integration


def _ids(reply_body: dict[str, Any]) -> list[str]:
    return [item["item_id"] for item in reply_body["items"]]


@pytest.fixture(scope="module")
def fan_of_a(api: Api) -> tuple[str, str]:
    """A user who clicked i0 and i1 (category a); and the stream position of the last click."""
    user = unique_user("ann")
    reply = api.send_events(user, [event(user, "i0"), event(user, "i1")])
    api.wait_for_ingest()
    sequences = [entry["sequence_number"] for entry in reply.json()["accepted"]]
    return user, max(sequences, key=int)


def test_new_user_gets_popular_items_with_reason_popular(api: Api) -> None:
    # GIVEN a user with no history
    # WHEN they ask for three items
    reply = api.call("GET", "/me/recommendations", user=unique_user("new"), query={"k": 3})

    # THEN the three most popular come back, each flagged popular, nothing reflected yet
    body = reply.json()
    assert reply.status == 200
    assert _ids(body) == ["i0", "i1", "i2"]
    assert {item["reason"] for item in body["items"]} == {"popular"}
    assert body["source"] == "popular"
    assert body["last_sequence"] is None


def test_list_carries_ids_scores_model_version_and_a_recommendation_id(
    api: Api, fan_of_a: tuple[str, str]
) -> None:
    # GIVEN a user with history
    user, _ = fan_of_a

    # WHEN they ask for their list twice
    first = api.call("GET", "/me/recommendations", user=user).json()
    second = api.call("GET", "/me/recommendations", user=user).json()

    # THEN each list has scores, the model version and an id of its own
    health = api.call("GET", "/health").json()
    assert all(isinstance(item["score"], float) for item in first["items"])
    assert first["model_version"] == health["model_version"]
    assert first["recommendation_id"] != second["recommendation_id"]


def test_history_personalizes_the_list_and_hides_what_was_seen(
    api: Api, fan_of_a: tuple[str, str]
) -> None:
    # GIVEN a user who clicked i0 and i1
    user, _ = fan_of_a

    # WHEN they ask for three items
    body = api.call("GET", "/me/recommendations", user=user, query={"k": 3}).json()

    # THEN the rest of category a comes first, personalized, without the clicked items
    assert _ids(body) == ["i2", "i3", "i4"]
    assert {item["reason"] for item in body["items"]} == {"personalized"}


def test_list_reports_the_last_event_it_reflects(api: Api, fan_of_a: tuple[str, str]) -> None:
    # GIVEN a user whose two events were accepted at known stream positions
    user, last_sequence = fan_of_a

    # WHEN they ask for their list
    body = api.call("GET", "/me/recommendations", user=user).json()

    # THEN it says it reflects events up to the later position
    assert body["last_sequence"] == last_sequence


def test_default_length_is_ten_and_model_unavailable_items_never_appear(api: Api) -> None:
    # GIVEN a new user and a model of ten items, one of them (i9) built unavailable
    # WHEN they ask without k
    body = api.call("GET", "/me/recommendations", user=unique_user("new")).json()

    # THEN the nine available items come back
    assert _ids(body) == [f"i{n}" for n in range(9)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ([("k", "3"), ("exclude", "i0,i2")], ["i1", "i3", "i4"]),
        ([("k", "3"), ("exclude", "i0"), ("exclude", "i1")], ["i2", "i3", "i4"]),
        ([("k", "3"), ("category", "b")], ["i5", "i6", "i7"]),
        ([("k", "3"), ("category", "b"), ("category", "even")], ["i0", "i2", "i4"]),
        ([("k", "3"), ("exclude_category", "a")], ["i5", "i6", "i7"]),
        ([("k", "3"), ("attr", "brand:globex")], ["i1", "i3", "i5"]),
        ([("attr", "brand:acme"), ("attr", "size:big")], ["i0", "i6"]),
        ([("attr", "brand:unknown")], []),
    ],
    ids=[
        "exclude-commas",
        "exclude-repeated",
        "category",
        "categories-any",
        "exclude-category",
        "attribute",
        "attributes-all",
        "attribute-nobody-has",
    ],
)
def test_filters_narrow_the_list(
    api: Api, query: list[tuple[str, str]], expected: list[str]
) -> None:
    # GIVEN a new user, whose list is by popularity (i0 first)
    # WHEN they ask with filters
    reply = api.call("GET", "/me/recommendations", user=unique_user("new"), query=query)

    # THEN only matching items come, still by popularity
    assert reply.status == 200
    assert _ids(reply.json()) == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"k": "0"}, "k"),
        ({"k": "1000000000"}, "k"),
        ({"k": "ten"}, "k"),
        ({"k": "2.5"}, "k"),
        ({"exclude": "x" * 10_240}, "exclude"),
        ({"category": "c" * 10_240}, "category"),
        ({"attr": "no-colon"}, "attr"),
        ({"attr": "brand:" + "v" * 200}, "attr"),
        ({"limit": "5"}, "limit"),
    ],
    ids=[
        "k-zero",
        "k-huge",
        "k-text",
        "k-fraction",
        "id-10kb",
        "category-10kb",
        "attr-form",
        "attr-long",
        "unknown-parameter",
    ],
)
def test_bad_query_answers_400_naming_the_parameter(
    api: Api, query: dict[str, str], field: str
) -> None:
    # GIVEN a query a client got wrong
    # WHEN it is sent
    reply = api.call("GET", "/me/recommendations", user="alice", query=query)

    # THEN the answer is a 400 whose fields name the parameter
    assert reply.status == 400
    body = reply.json()
    assert body["error"] == "invalid_request"
    assert [entry["field"] for entry in body["fields"]] == [field]


def test_request_without_any_query_string_gets_the_default_list(api: Api) -> None:
    # GIVEN a request with no query string at all
    # WHEN it is sent
    reply = api.call("GET", "/me/recommendations", user=unique_user("new"))

    # THEN the defaults apply
    assert reply.status == 200


def test_too_long_user_id_in_the_path_answers_400(api: Api) -> None:
    # GIVEN a path parameter of 10 KB
    user = "u" * 10_240

    # WHEN it is sent (by that same "user")
    reply = api.call("GET", f"/users/{user}/recommendations", user="alice")

    # THEN it is refused for its form, naming the parameter
    assert reply.status == 400
    assert reply.json()["fields"][0]["field"] == "userId"
