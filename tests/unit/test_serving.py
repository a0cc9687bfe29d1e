"""Serving: the model cache keeps the last good model; lists are personalized or popular."""

import numpy as np
import pytest
from pydantic import ValidationError

from recsys.config import HistoryLimits
from recsys.errors import ModelNotFoundError
from recsys.foldin import fold_history
from recsys.serving import ModelCache, RecommendationRequest, recommend
from recsys.state import UserState, merge_history
from tests.factories import make_event, make_model
from tests.fakes import InMemoryModelStore, InMemoryUserStateStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _published(store, factors, **kwargs):
    model, payload = make_model(factors, **kwargs)
    store.publish(model.version, payload, model.manifest.model_dump_json().encode())
    return model


@pytest.fixture
def model_store():
    return InMemoryModelStore()


def test_cache_loads_the_published_model_once_per_refresh_interval(model_store):
    published = _published(model_store, np.eye(3))
    clock = Clock()
    cache = ModelCache(model_store, refresh_seconds=60, clock=clock)

    first = cache.current()
    second_model = _published(model_store, 2 * np.eye(3))
    clock.now = 59
    before_refresh = cache.current()
    clock.now = 60
    after_refresh = cache.current()

    assert first.version == published.version
    assert before_refresh is first
    assert after_refresh.version == second_model.version


def test_cache_keeps_the_last_good_model_when_the_new_payload_is_corrupt(model_store):
    good = _published(model_store, np.eye(3))
    clock = Clock()
    cache = ModelCache(model_store, refresh_seconds=1, clock=clock)
    cache.current()

    bad = _published(model_store, 3 * np.eye(3))
    model_store.objects[model_store.pointer.payload_key] = b"corrupted"
    clock.now = 5

    assert cache.current().version == good.version
    assert "sha256" in cache.last_error
    assert bad.version != good.version


def test_cache_keeps_the_last_good_model_when_the_artifact_is_missing(model_store):
    good = _published(model_store, np.eye(3))
    clock = Clock()
    cache = ModelCache(model_store, refresh_seconds=1, clock=clock)
    cache.current()
    _published(model_store, 3 * np.eye(3))
    del model_store.objects[model_store.pointer.manifest_key]
    clock.now = 5
    assert cache.current().version == good.version
    assert "ModelNotFoundError" in cache.last_error


def test_cache_without_any_published_model_raises_model_not_found(model_store):
    cache = ModelCache(model_store, refresh_seconds=1)
    assert cache.current() is None
    with pytest.raises(ModelNotFoundError, match="no model"):
        cache.require()


def test_unknown_user_gets_popular_items(model_store):
    model = _published(model_store, np.eye(3), popularity=np.array([0.1, 0.9, 0.5]))
    response, _ = recommend(
        user_id="nobody",
        request=RecommendationRequest(k=2),
        store=InMemoryUserStateStore(),
        model=model,
    )
    assert response.source == "popular"
    assert [item.item_id for item in response.items] == ["i1", "i2"]
    assert all(item.reason == "popular" for item in response.items)


def test_known_user_gets_personalized_items_without_what_they_have_seen(model_store):
    # GIVEN a user whose vector favours i0 and i1 over i2, who has seen i0
    model = _published(model_store, np.array([[1.0, 0], [0.9, 0], [0, 1.0]]))
    store = InMemoryUserStateStore()
    history, _ = merge_history((), [make_event("a", item_id="i0")], HistoryLimits())
    state = UserState(user_id="u1", history=history, last_sequence="42")
    store.put(state, 0)

    # WHEN asked for two items
    response, stats = recommend(
        user_id="u1", request=RecommendationRequest(k=2), store=store, model=model
    )

    # THEN i1 comes first, i0 is filtered, and the vector was folded for this model version
    assert response.source == "personalized"
    assert [item.item_id for item in response.items] == ["i1", "i2"]
    assert response.last_sequence == "42"
    assert stats.refolded


def test_stored_vector_of_the_current_model_is_used_as_is(model_store):
    model = _published(model_store, np.array([[1.0, 0], [0, 1.0], [0.5, 0.5]]))
    store = InMemoryUserStateStore()
    history, _ = merge_history((), [make_event("a", item_id="i2")], HistoryLimits())
    # A vector that disagrees with the history proves which one is used.
    vector = np.array([0.0, 1.0], dtype=np.float32)
    store.put(UserState("u1", history, vector, model.version), 0)

    response, stats = recommend(
        user_id="u1", request=RecommendationRequest(k=1), store=store, model=model
    )

    assert [item.item_id for item in response.items] == ["i1"]
    assert not stats.refolded
    assert not np.allclose(fold_history(model, history).vector, vector)


def test_history_of_items_the_model_does_not_know_falls_back_to_popular(model_store):
    model = _published(model_store, np.eye(2), popularity=np.array([0.2, 0.8]))
    store = InMemoryUserStateStore()
    history, _ = merge_history((), [make_event("a", item_id="brand-new")], HistoryLimits())
    store.put(UserState("u1", history), 0)
    response, stats = recommend(
        user_id="u1", request=RecommendationRequest(k=1), store=store, model=model
    )
    assert response.source == "popular"
    assert stats.unknown_history_items == 1


@pytest.mark.parametrize(
    "fields, bad_field",
    [
        ({"k": 0}, "k"),
        ({"k": 101}, "k"),
        ({"exclude": ["x" * 65]}, "exclude"),
        ({"exclude": [f"i{n}" for n in range(101)]}, "exclude"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_requests_name_the_field(fields, bad_field):
    with pytest.raises(ValidationError) as caught:
        RecommendationRequest(**fields)
    assert caught.value.errors()[0]["loc"][0] == bad_field
