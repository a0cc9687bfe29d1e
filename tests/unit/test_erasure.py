"""Deleting a user: marker first, then the state; a receipt that says what and when."""

from datetime import UTC, datetime

from recsys.config import HistoryLimits
from recsys.erasure import delete_user, outlives_deletion
from recsys.state import UserState, merge_history
from tests.factories import make_event
from tests.fakes import InMemoryDeletionRegistry, InMemoryUserStateStore

DELETED_AT = datetime(2026, 11, 3, 9, 30, 15, 250_000, tzinfo=UTC)


class LoggingStateStore(InMemoryUserStateStore):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def delete(self, user_id: str) -> bool:
        self.log.append(f"state {user_id}")
        return super().delete(user_id)


def _store_with_history(log: list[str], events: int) -> LoggingStateStore:
    store = LoggingStateStore(log)
    history, _ = merge_history(
        (), [make_event(f"e{n}", item_id=f"i{n}") for n in range(events)], HistoryLimits()
    )
    store.put(UserState(user_id="u1", history=history), 0)
    return store


def test_receipt_counts_the_history_and_names_the_cut_off():
    # GIVEN a user with three events in their state
    log: list[str] = []
    store = _store_with_history(log, 3)
    deletions = InMemoryDeletionRegistry(log=log)

    # WHEN they are deleted
    receipt = delete_user(user_id="u1", states=store, deletions=deletions, clock=lambda: DELETED_AT)

    # THEN the receipt says so, to the millisecond
    assert receipt.state_deleted is True
    assert receipt.history_events_deleted == 3
    assert receipt.deleted_at == "2026-11-03T09:30:15.250Z"
    assert receipt.excluded_from_training == "events up to 2026-11-03T09:30:15.250Z"
    assert store.get("u1") is None


def test_marker_is_written_before_the_state_is_deleted():
    # GIVEN a user with a state
    log: list[str] = []
    store = _store_with_history(log, 1)

    # WHEN they are deleted
    delete_user(
        user_id="u1",
        states=store,
        deletions=InMemoryDeletionRegistry(log=log),
        clock=lambda: DELETED_AT,
    )

    # THEN the marker came first, so no ingest in between can re-create the state
    assert log == ["marker u1", "state u1"]


def test_marker_holds_the_deletion_time_in_epoch_ms():
    # GIVEN a user never seen
    deletions = InMemoryDeletionRegistry()

    # WHEN they are deleted
    receipt = delete_user(
        user_id="u9",
        states=InMemoryUserStateStore(),
        deletions=deletions,
        clock=lambda: DELETED_AT,
    )

    # THEN there was no state, and the marker is the deletion time
    assert (receipt.state_deleted, receipt.history_events_deleted) == (False, 0)
    assert deletions.markers == {"u9": int(DELETED_AT.timestamp() * 1000)}


def test_event_at_or_before_the_deletion_does_not_outlive_it():
    # GIVEN a user deleted at t = 1000 ms
    deleted_at = {"u1": 1000}

    # WHEN events around that time are judged
    verdicts = [outlives_deletion("u1", stamp, deleted_at) for stamp in (999, 1000, 1001)]

    # THEN only the later one survives, and other users' events always do
    assert verdicts == [False, False, True]
    assert outlives_deletion("u2", 1, deleted_at)
