"""Ingestion: one write per user per delivery, idempotent redelivery, lost races retried."""

import random
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.config import HistoryLimits
from recsys.errors import ConcurrentUpdateError
from recsys.events import EventType
from recsys.foldin import fold_history
from recsys.ingestion import RetryPolicy, apply_user_events, latest_sequence
from recsys.ports import VersionConflict
from recsys.state import UserState, merge_history
from tests.factories import make_event, make_model
from tests.fakes import InMemoryUserStateStore

LIMITS = HistoryLimits(max_events=20, max_age_days=30)
NO_WAIT = RetryPolicy(max_attempts=3, base_delay_s=0.0, max_delay_s=0.0)


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    built, _ = make_model(rng.normal(size=(12, 4)))
    return built


def _apply(store, model, events, sequence="100", **kwargs):
    return apply_user_events(
        user_id="u1",
        events=events,
        last_sequence=sequence,
        store=store,
        model=model,
        limits=LIMITS,
        retry=NO_WAIT,
        sleep=lambda _: None,
        **kwargs,
    )


def test_first_events_create_the_state_with_a_folded_vector(model):
    # GIVEN a new user's three events
    store = InMemoryUserStateStore()
    events = [make_event(f"e{n}", item_id=f"i{n}", minutes=n) for n in range(3)]

    # WHEN applied
    outcome = _apply(store, model, events)

    # THEN one write stores the history and the vector folded from all of it
    stored = store.get("u1")
    assert outcome.written and outcome.new_events == 3 and store.writes == 1
    assert stored.version == 1
    assert stored.state.model_version == model.version
    np.testing.assert_allclose(
        stored.state.vector, fold_history(model, stored.state.history).vector
    )


def test_redelivered_batch_writes_nothing_and_leaves_state_unchanged(model):
    store = InMemoryUserStateStore()
    events = [make_event(f"e{n}", item_id=f"i{n}", minutes=n) for n in range(3)]
    _apply(store, model, events)
    before = store.get("u1")

    outcome = _apply(store, model, events)

    assert not outcome.written
    assert outcome.duplicate_events == 3
    assert store.get("u1") is before
    assert store.writes == 1


def test_vector_is_folded_from_the_whole_history_not_the_newest_events(model):
    store = InMemoryUserStateStore()
    _apply(store, model, [make_event("a", item_id="i1", minutes=0)])
    _apply(store, model, [make_event("b", item_id="i2", minutes=1)], sequence="101")

    state = store.get("u1").state
    assert [entry.event_id for entry in state.history] == ["a", "b"]
    np.testing.assert_allclose(state.vector, fold_history(model, state.history).vector)


def test_without_a_model_only_the_history_is_kept_and_folded_once_a_model_exists(model):
    store = InMemoryUserStateStore()
    _apply(store, None, [make_event("a", item_id="i1")])
    assert store.get("u1").state.vector is None

    outcome = _apply(store, model, [make_event("a", item_id="i1")])

    assert outcome.written and outcome.refolded and outcome.new_events == 0
    assert store.get("u1").state.model_version == model.version


def test_new_events_without_a_model_drop_the_old_vector_so_it_is_never_served_stale(model):
    # GIVEN a state folded against a model
    store = InMemoryUserStateStore()
    _apply(store, model, [make_event("a", item_id="i1")])

    # WHEN a container without a model (it could not load one) applies a new event
    _apply(store, None, [make_event("b", item_id="i2", minutes=1)], sequence="101")

    # THEN the history has both events and no vector claims to reflect them
    state = store.get("u1").state
    assert [entry.event_id for entry in state.history] == ["a", "b"]
    assert state.vector is None and state.model_version is None


def test_highest_sequence_number_is_kept_whatever_the_arrival_order(model):
    store = InMemoryUserStateStore()
    _apply(store, model, [make_event("b", minutes=1)], sequence="9000000000000000000000000")
    _apply(store, model, [make_event("a", minutes=0)], sequence="800")
    assert store.get("u1").state.last_sequence == "9000000000000000000000000"
    assert latest_sequence([None, "12", "9"]) == "12"


class RacingStore(InMemoryUserStateStore):
    """Another writer adds an event between our read and our write, ``races`` times."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races

    def put(self, state, expected_version):
        if self.races > 0:
            self.races -= 1
            rival = self.get(state.user_id)
            base = rival.state if rival else UserState(user_id=state.user_id)
            history, _ = merge_history(
                base.history, [make_event(f"rival{self.races}", minutes=5)], LIMITS
            )
            super().put(replace(base, history=history), rival.version if rival else 0)
        return super().put(state, expected_version)


def test_lost_race_is_retried_and_no_event_is_lost(model):
    store = RacingStore(races=2)
    outcome = _apply(store, model, [make_event("mine", item_id="i3")])
    ids = {entry.event_id for entry in store.get("u1").state.history}
    assert outcome.attempts == 3
    assert ids == {"mine", "rival0", "rival1"}


def test_every_attempt_lost_raises_so_the_records_are_delivered_again(model):
    store = RacingStore(races=10)
    with pytest.raises(ConcurrentUpdateError, match="u1"):
        _apply(store, model, [make_event("mine")])


def test_backoff_grows_and_stays_under_its_ceiling():
    policy = RetryPolicy(max_attempts=5, base_delay_s=0.01, max_delay_s=0.05)
    rng = random.Random(1)
    delays = [max(policy.delay(attempt, rng) for _ in range(200)) for attempt in (1, 2, 3, 6)]
    assert delays[0] <= 0.01 < delays[1] <= 0.02 < delays[2] <= 0.04 < delays[3] <= 0.05


def test_events_of_another_user_are_refused(model):
    with pytest.raises(ValueError, match="another user"):
        _apply(InMemoryUserStateStore(), model, [make_event("x", user_id="u2")])


def test_version_conflict_is_what_the_fake_raises_for_a_stale_write():
    store = InMemoryUserStateStore()
    store.put(UserState(user_id="u1"), 0)
    with pytest.raises(VersionConflict):
        store.put(UserState(user_id="u1"), 0)


EVENT_POOL = [
    make_event(
        f"p{n:02d}",
        item_id=f"i{n % 12}",
        minutes=n * 131 % 997,
        event_type=[EventType.VIEW, EventType.CLICK, EventType.DISLIKE][n % 3],
    )
    for n in range(30)
]


@settings(max_examples=60, deadline=None)
@given(
    chosen=st.lists(st.integers(0, len(EVENT_POOL) - 1), min_size=1, max_size=25, unique=True),
    deliveries=st.data(),
)
def test_any_interleaving_of_duplicates_gives_the_clean_final_state(model, chosen, deliveries):
    # GIVEN a clean sequence of distinct events, applied once in order
    clean = [EVENT_POOL[i] for i in chosen]
    clean_store = InMemoryUserStateStore()
    _apply(clean_store, model, clean)

    # WHEN the same events arrive shuffled, in batches, each possibly several times
    arrivals = deliveries.draw(st.lists(st.sampled_from(clean), min_size=len(clean), max_size=60))
    arrivals = deliveries.draw(st.permutations(arrivals + clean))
    cuts = sorted(deliveries.draw(st.lists(st.integers(0, len(arrivals)), max_size=6)))
    store = InMemoryUserStateStore()
    for start, end in zip([0, *cuts], [*cuts, len(arrivals)], strict=True):
        if start < end:
            _apply(store, model, arrivals[start:end])

    # THEN the final history and vector are those of the clean run
    final, expected = store.get("u1").state, clean_store.get("u1").state
    assert final.history == expected.history
    np.testing.assert_allclose(final.vector, expected.vector, rtol=1e-5, atol=1e-6)
