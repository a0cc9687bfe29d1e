"""GET /items/{itemId}/similar and POST /me/rank over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api, unique_user

pytestmark = pytest.mark.integration


def _ids(body: dict[str, Any]) -> list[str]:
    return [item["item_id"] for item in body["items"]]


# ------------------------------------------------------------------ similar items ---


def test_similar_items_are_the_nearest_by_cosine_without_the_item(api: Api) -> None:
    # GIVEN i0, whose factors point the way of i1..i4 (nearer the lower the number)
    # WHEN its similar items are asked for
    reply = api.call("GET", "/items/i0/similar", user="alice", query={"k": 4})

    # THEN they are i1..i4 in that order, flagged similar, i0 itself absent
    body = reply.json()
    assert reply.status == 200
    assert _ids(body) == ["i1", "i2", "i3", "i4"]
    assert {item["reason"] for item in body["items"]} == {"similar"}
    assert body["item_id"] == "i0"


def test_similar_items_take_the_same_filters(api: Api) -> None:
    # GIVEN i0 and a filter to items of brand acme (even items)
    query = [("k", "2"), ("attr", "brand:acme")]

    # WHEN its similar items are asked for
    body = api.call("GET", "/items/i0/similar", user="alice", query=query).json()

    # THEN only even items of its group come
    assert _ids(body) == ["i2", "i4"]


def test_similar_items_of_an_unknown_item_answer_404(api: Api) -> None:
    # GIVEN an item id the model has never seen
    # WHEN its similar items are asked for
    reply = api.call("GET", "/items/never-seen/similar", user="alice")

    # THEN the answer is 404 with a JSON error
    assert reply.status == 404
    assert reply.json()["error"] == "unknown_item"


def test_similar_items_refuse_a_k_out_of_range(api: Api) -> None:
    # GIVEN k=0
    # WHEN similar items are asked for
    reply = api.call("GET", "/items/i0/similar", user="alice", query={"k": "0"})

    # THEN it is a 400 naming k
    assert reply.status == 400
    assert reply.json()["fields"][0]["field"] == "k"


# ---------------------------------------------------------------------------- rank ---


def test_rank_orders_known_items_and_puts_unknown_ones_last_flagged(api: Api) -> None:
    # GIVEN a new user (scored by popularity) and ids with two the model does not know
    ids = ["i3", "ghost-b", "i0", "ghost-a", "i5"]

    # WHEN they are ranked
    reply = api.call("POST", "/me/rank", user=unique_user("new"), json_body={"item_ids": ids})

    # THEN known ids come best first, unknown ones last in the order sent, none dropped
    body = reply.json()
    assert reply.status == 200
    assert _ids(body) == ["i0", "i3", "i5", "ghost-b", "ghost-a"]
    assert [item["known"] for item in body["items"]] == [True, True, True, False, False]
    assert [item["reason"] for item in body["items"][3:]] == ["unknown_item", "unknown_item"]
    assert body["items"][3]["score"] is None


def test_rank_puts_unavailable_items_after_available_ones(api: Api) -> None:
    # GIVEN i9, which the model was built with unavailable, ahead of a less popular...
    ids = ["i9", "i8"]

    # WHEN they are ranked
    body = api.call("POST", "/me/rank", user=unique_user("new"), json_body={"item_ids": ids}).json()

    # THEN the available one comes first and the other is flagged unavailable
    assert _ids(body) == ["i8", "i9"]
    assert body["items"][1]["reason"] == "unavailable"


def test_rank_takes_up_to_500_ids(api: Api) -> None:
    # GIVEN 500 distinct ids
    ids = [f"x{n}" for n in range(500)]

    # WHEN they are ranked
    reply = api.call("POST", "/me/rank", user="alice", json_body={"item_ids": ids})

    # THEN all 500 come back
    assert reply.status == 200
    assert len(reply.json()["items"]) == 500


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"item_ids": [f"x{n}" for n in range(501)]}, "item_ids"),
        ({"item_ids": []}, "item_ids"),
        ({"item_ids": ["i1", "i1"]}, "item_ids"),
        ({"item_ids": ["x" * 10_240]}, "item_ids.0"),
        ({"item_ids": [1, 2]}, "item_ids.0"),
        ({"item_ids": ["i1"], "user_id": "bob"}, "user_id"),
        ({}, "item_ids"),
    ],
    ids=["501-ids", "no-ids", "repeated", "id-10kb", "numbers", "unknown-field", "missing"],
)
def test_bad_rank_body_answers_400_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    # GIVEN a body a client got wrong
    # WHEN it is sent
    reply = api.call("POST", "/me/rank", user="alice", json_body=body)

    # THEN it is a 400 naming the field first
    assert reply.status == 400
    assert reply.json()["fields"][0]["field"] == field


def test_broken_json_answers_400_naming_the_body(api: Api) -> None:
    # GIVEN a body that is not JSON
    headers = {"Content-Type": "application/json"}

    # WHEN it is sent
    reply = api.call("POST", "/me/rank", user="alice", raw_body=b'{"item_ids": [', headers=headers)

    # THEN it is a 400 naming the body
    assert reply.status == 400
    assert reply.json()["fields"] == [{"field": "body", "problem": "is not valid JSON"}]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
def test_body_of_another_content_type_answers_415(api: Api, content_type: str | None) -> None:
    # GIVEN a valid JSON body labelled as something else, or not labelled
    headers = {"Content-Type": content_type} if content_type else {}

    # WHEN it is sent
    reply = api.call(
        "POST", "/me/rank", user="alice", raw_body=b'{"item_ids": ["i1"]}', headers=headers
    )

    # THEN it is a 415 naming the header
    assert reply.status == 415
    assert reply.json()["fields"][0]["field"] == "Content-Type"


def test_json_with_a_charset_is_accepted(api: Api) -> None:
    # GIVEN a JSON content type with a charset parameter
    headers = {"Content-Type": "application/json; charset=utf-8"}

    # WHEN a valid body is sent with it
    reply = api.call(
        "POST", "/me/rank", user="alice", raw_body=b'{"item_ids": ["i1"]}', headers=headers
    )

    # THEN it is served
    assert reply.status == 200


def test_body_that_is_not_utf8_answers_400_naming_the_body(api: Api) -> None:
    # GIVEN bytes that are not UTF-8, labelled as JSON
    headers = {"Content-Type": "application/json"}

    # WHEN they are sent
    reply = api.call("POST", "/me/rank", user="alice", raw_body=b"\xff\xfe{", headers=headers)

    # THEN it is a 400 naming the body, not a server error
    assert reply.status == 400
    assert reply.json()["fields"] == [{"field": "body", "problem": "is not UTF-8 JSON"}]
