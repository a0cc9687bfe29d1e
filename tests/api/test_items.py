"""Catalogue entries over HTTP: create, read, update, delete; hiding acts on the next request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.conftest import Api, unique_user

pytestmark = pytest.mark.integration

ADMIN = "root"


def _ids(body: dict[str, Any]) -> list[str]:
    return [item["item_id"] for item in body["items"]]


def _put(api: Api, item_id: str, **entry: Any) -> Any:
    return api.call("PUT", f"/items/{item_id}", user=ADMIN, admin=True, json_body=entry)


@pytest.fixture
def restore_i1(api: Api) -> Iterator[None]:
    """Leave i1 available again, whatever the test did to it."""
    yield
    assert _put(api, "i1", categories=["a"], available=True).status == 200


def test_admin_creates_an_item_and_reads_it_back(api: Api) -> None:
    # GIVEN an item the model does not know
    item_id = unique_user("new-item")

    # WHEN an admin writes its entry
    written = _put(api, item_id, title="Lamp", categories=["home"], attributes={"brand": "acme"})

    # THEN any user reads the same entry back, marked as not in the model yet
    read = api.call("GET", f"/items/{item_id}", user="alice")
    assert written.status == 200
    assert read.json() == written.json()
    assert read.json()["in_model"] is False
    assert read.json()["attributes"] == {"brand": "acme"}


def test_update_replaces_the_whole_entry(api: Api) -> None:
    # GIVEN an item with a title and two categories
    item_id = unique_user("lamp")
    _put(api, item_id, title="Lamp", categories=["home", "light"])

    # WHEN an admin writes it again with one category and no title
    _put(api, item_id, categories=["garden"])

    # THEN the entry is the new one alone
    body = api.call("GET", f"/items/{item_id}", user="alice").json()
    assert body["title"] is None
    assert body["categories"] == ["garden"]


def test_item_the_model_knows_is_described_from_the_model(api: Api) -> None:
    # GIVEN an item that has factors in the model and no admin entry
    # WHEN it is read
    body = api.call("GET", "/items/i6", user="alice").json()

    # THEN its categories and attributes are the model's
    assert body["source"] == "model"
    assert body["categories"] == ["b", "even"]
    assert body["attributes"] == {"brand": "acme", "size": "big"}


def test_unknown_item_answers_404(api: Api) -> None:
    # GIVEN an id nobody knows
    # WHEN it is read
    reply = api.call("GET", "/items/no-such-item", user="alice")

    # THEN it is a 404
    assert reply.status == 404


def test_hiding_an_item_takes_effect_on_the_next_request(api: Api, restore_i1: None) -> None:
    # GIVEN a user whose list starts i0, i1
    user = unique_user("hal")
    before = api.call("GET", "/me/recommendations", user=user, query={"k": 3}).json()
    assert _ids(before) == ["i0", "i1", "i2"]

    # WHEN an admin hides i1
    assert _put(api, "i1", categories=["a"], available=False).status == 200

    # THEN the very next list and similar items go without it, with no training in between
    after = api.call("GET", "/me/recommendations", user=user, query={"k": 3}).json()
    similar = api.call("GET", "/items/i0/similar", user=user, query={"k": 2}).json()
    assert _ids(after) == ["i0", "i2", "i3"]
    assert _ids(similar) == ["i2", "i3"]
    assert after["model_version"] == before["model_version"]


def test_showing_an_item_the_model_built_hidden_brings_it_back(api: Api) -> None:
    # GIVEN i9, which the model was built with unavailable
    user = unique_user("ivy")
    query = {"category": "b"}
    assert "i9" not in _ids(api.call("GET", "/me/recommendations", user=user, query=query).json())

    # WHEN an admin makes it available
    _put(api, "i9", categories=["b"], available=True)
    try:
        after = api.call("GET", "/me/recommendations", user=user, query=query).json()
    finally:
        _put(api, "i9", categories=["b"], available=False)

    # THEN it is in the next list
    assert "i9" in _ids(after)


def test_deleting_an_item_hides_it_and_removes_its_entry(api: Api, restore_i1: None) -> None:
    # GIVEN i1 with an admin entry
    _put(api, "i1", title="One", categories=["a"])

    # WHEN an admin deletes it
    reply = api.call("DELETE", "/items/i1", user=ADMIN, admin=True)

    # THEN the entry is gone, the item is described from the model as unavailable and the
    # next list goes without it
    assert reply.json() == {"item_id": "i1", "entry_deleted": True, "hidden": True}
    view = api.call("GET", "/items/i1", user="alice").json()
    assert (view["source"], view["available"]) == ("model", False)
    listed = api.call("GET", "/me/recommendations", user=unique_user("jo"), query={"k": 2}).json()
    assert _ids(listed) == ["i0", "i2"]


def test_deleting_an_unknown_item_answers_404(api: Api) -> None:
    # GIVEN an id neither the catalogue nor the model knows
    # WHEN an admin deletes it
    reply = api.call("DELETE", "/items/no-such-item", user=ADMIN, admin=True)

    # THEN it is a 404
    assert reply.status == 404


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"categories": "home"}, "categories"),
        ({"categories": ["c" * 10_240]}, "categories.0"),
        ({"attributes": {"bad name!": "x"}}, "attributes.bad name!.[key]"),
        ({"available": "sometimes"}, "available"),
        ({"colour": "red"}, "colour"),
    ],
    ids=["wrong-type", "category-10kb", "attribute-name", "available-type", "unknown-field"],
)
def test_bad_entry_answers_400_naming_the_field(
    api: Api, entry: dict[str, Any], field: str
) -> None:
    # GIVEN an entry an admin got wrong
    # WHEN it is written
    reply = _put(api, "i2", **entry)

    # THEN it is a 400 naming the field
    assert reply.status == 400
    assert reply.json()["fields"][0]["field"] == field
