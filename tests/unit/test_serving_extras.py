"""Serving beyond the plain list: catalogue availability, rank, similar items and health."""

from datetime import timedelta

import numpy as np
import pytest

from recsys.config import HistoryLimits
from recsys.errors import UnknownItemError
from recsys.ports import Availability
from recsys.serving import (
    RankRequest,
    RecommendationRequest,
    model_health,
    rank_items,
    recommend,
    similar_items,
)
from recsys.state import UserState, merge_history
from tests.factories import BASE_TIME, make_event, make_model
from tests.fakes import InMemoryUserStateStore

POPULARITY = np.array([0.9, 0.7, 0.5, 0.3, 0.1])


@pytest.fixture
def model():
    # i0..i2 along x, i3..i4 along y; popularity falls with the row.
    factors = np.array([[1, 0], [0.9, 0.1], [0.8, 0.2], [0, 1], [0.1, 0.9]], dtype=np.float32)
    built, _ = make_model(
        factors,
        popularity=POPULARITY,
        available=np.array([True, True, True, True, False]),
    )
    return built


def _ids(items):
    return [item.item_id for item in items]


def _user_who_clicked(store, *items):
    events = [make_event(f"e{n}", item_id=item) for n, item in enumerate(items)]
    history, _ = merge_history((), events, HistoryLimits())
    store.put(UserState(user_id="u1", history=history, last_sequence="7"), 0)


def test_hidden_items_leave_the_list_and_shown_ones_join_it(model):
    # GIVEN an admin hid i0 and showed i4, which the model was built with hidden
    availability = Availability(hidden=frozenset({"i0"}), shown=frozenset({"i4"}))

    # WHEN a new user asks for everything
    response, _ = recommend(
        user_id="new",
        request=RecommendationRequest(k=10),
        store=InMemoryUserStateStore(),
        model=model,
        availability=availability,
    )

    # THEN i0 is gone and i4 is back
    assert _ids(response.items) == ["i1", "i2", "i3", "i4"]


def test_rank_orders_by_the_users_vector_and_keeps_unknown_ids_last_in_order(model):
    # GIVEN a user who clicked i0 (leaning to x) and ids with two unknown ones
    store = InMemoryUserStateStore()
    _user_who_clicked(store, "i0")
    ids = ["ghost-2", "i3", "i1", "ghost-1", "i4"]

    # WHEN they are ranked
    response = rank_items(user_id="u1", item_ids=ids, store=store, model=model)

    # THEN x-leaning i1 beats i3; the built-hidden i4 follows; unknown ids close, in order
    assert response.source == "personalized"
    assert _ids(response.items) == ["i1", "i3", "i4", "ghost-2", "ghost-1"]
    assert [item.reason for item in response.items] == [
        "personalized",
        "personalized",
        "unavailable",
        "unknown_item",
        "unknown_item",
    ]
    assert response.last_sequence == "7"


def test_rank_of_a_new_user_is_by_popularity(model):
    # GIVEN a user with no history
    # WHEN ids are ranked
    response = rank_items(
        user_id="new", item_ids=["i3", "i0", "i2"], store=InMemoryUserStateStore(), model=model
    )

    # THEN popularity orders them
    assert _ids(response.items) == ["i0", "i2", "i3"]
    assert [item.score for item in response.items] == pytest.approx([0.9, 0.5, 0.3])


def test_rank_ties_keep_the_order_given(model):
    # GIVEN a model where every item is equally popular
    flat, _ = make_model(np.eye(3), popularity=np.ones(3))

    # WHEN ids are ranked for a new user
    response = rank_items(
        user_id="new", item_ids=["i2", "i0", "i1"], store=InMemoryUserStateStore(), model=flat
    )

    # THEN they stay as sent
    assert _ids(response.items) == ["i2", "i0", "i1"]


def test_rank_request_refuses_repeated_ids():
    with pytest.raises(ValueError, match="repeat"):
        RankRequest(item_ids=["i1", "i1"])


def test_similar_items_apply_the_request_filters_and_availability(model):
    # GIVEN i0, an admin's hide of i1, and a request that excludes i2
    request = RecommendationRequest(k=3, exclude=("i2",))

    # WHEN the items similar to i0 are asked for
    response = similar_items(
        item_id="i0",
        request=request,
        model=model,
        availability=Availability(hidden=frozenset({"i1"})),
    )

    # THEN only i3 is left (i4 was built hidden)
    assert _ids(response.items) == ["i3"]
    assert response.items[0].reason == "similar"


def test_similar_items_of_an_unknown_item_raise(model):
    with pytest.raises(UnknownItemError):
        similar_items(item_id="ghost", request=RecommendationRequest(), model=model)


def test_health_reports_version_and_age(model):
    # GIVEN the model built at BASE_TIME
    # WHEN health is asked 90 seconds later
    health = model_health(model, now=BASE_TIME + timedelta(seconds=90))

    # THEN it reports the model's version and that age
    assert health.model_version == model.version
    assert health.model_age_seconds == 90.0
