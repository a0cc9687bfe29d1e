"""Real-time ingestion: a user's new events become a new history and a re-folded vector.

A stream batch is grouped by user so that each user costs one read and one conditional write
however many of their events the batch holds. The write is optimistic: it names the version
it read, and a writer that lost the race reads again and retries with jittered backoff.
Because :func:`recsys.state.merge_history` is idempotent and order-independent, a batch
delivered again (Kinesis delivers at least once) finds nothing new and writes nothing.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from recsys.config import HistoryLimits
from recsys.errors import ConcurrentUpdateError
from recsys.events import Event
from recsys.foldin import fold_history
from recsys.model import ItemModel
from recsys.ports import UserStateStore, VersionConflict
from recsys.state import UserState, merge_history

logger = logging.getLogger(__name__)

RecordT = TypeVar("RecordT")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with full-jitter exponential backoff for lost optimistic-lock races."""

    max_attempts: int = 6
    base_delay_s: float = 0.01
    max_delay_s: float = 0.2

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (attempts count from 1)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return rng.uniform(0.0, ceiling)


@dataclass(frozen=True)
class UserOutcome:
    """What one user's part of a batch did."""

    user_id: str
    new_events: int
    duplicate_events: int
    written: bool
    attempts: int
    unknown_items: int
    refolded: bool


@dataclass
class UserBatch(Generic[RecordT]):
    """Valid events of one delivery, grouped by user, each with the record that carried it."""

    events: dict[str, list[tuple[Event, str, RecordT]]] = field(default_factory=dict)

    def add(self, event: Event, sequence_number: str, record: RecordT) -> None:
        self.events.setdefault(event.user_id, []).append((event, sequence_number, record))

    def __len__(self) -> int:
        return sum(len(items) for items in self.events.values())


def latest_sequence(sequences: Iterable[str | None]) -> str | None:
    """The highest Kinesis sequence number (decimal strings, compared as integers)."""
    present = [s for s in sequences if s]
    return max(present, key=int) if present else None


def apply_user_events(
    *,
    user_id: str,
    events: list[Event],
    last_sequence: str | None,
    store: UserStateStore,
    model: ItemModel | None,
    limits: HistoryLimits,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> UserOutcome:
    """Merge one user's events into the stored state and re-fold the vector.

    Parameters
    ----------
    user_id
        Whose events these are; every event must belong to this user.
    events
        The user's valid events from one delivery, in any order, possibly already applied.
    last_sequence
        Highest stream sequence number among them, stored as "reflected up to here".
    store
        Where states live, with optimistic locking.
    model
        The current model, or None before the first training: then only the history is
        kept, and the vector is folded when a model exists.
    limits
        History bounds.

    Returns
    -------
    UserOutcome
        ``written`` is False when the delivery changed nothing (a redelivery).

    Raises
    ------
    ConcurrentUpdateError
        When every attempt lost the race; the caller reports the records as failed so the
        stream delivers them again (at least once), which is safe because merging is
        idempotent.
    """
    if any(event.user_id != user_id for event in events):
        raise ValueError("apply_user_events got events of another user")
    policy = retry or RetryPolicy()
    jitter = rng or random.Random()

    for attempt in range(1, policy.max_attempts + 1):
        stored = store.get(user_id)
        state = stored.state if stored else UserState(user_id=user_id)
        history, new_events = merge_history(state.history, events, limits)
        sequence = latest_sequence([state.last_sequence, last_sequence])

        stale_vector = model is not None and (
            state.vector is None or state.model_version != model.version
        )
        if new_events == 0 and not stale_vector and sequence == state.last_sequence:
            return UserOutcome(user_id, 0, len(events), False, attempt, 0, False)

        updated = replace(state, history=history, last_sequence=sequence)
        unknown = 0
        if model is not None:
            folded = fold_history(model, history)
            updated = replace(updated, vector=folded.vector, model_version=model.version)
            unknown = folded.unknown_items
        elif new_events:
            # Without a model this container cannot re-fold, and a vector from before these
            # events would be served as if current: drop it, so readers fold from history.
            updated = replace(updated, vector=None, model_version=None)

        try:
            store.put(updated, expected_version=stored.version if stored else 0)
        except VersionConflict:
            logger.debug("lost write race for %s on attempt %d", user_id, attempt)
            if attempt < policy.max_attempts:
                sleep(policy.delay(attempt, jitter))
            continue
        return UserOutcome(
            user_id=user_id,
            new_events=new_events,
            duplicate_events=len(events) - new_events,
            written=True,
            attempts=attempt,
            unknown_items=unknown,
            refolded=model is not None,
        )

    raise ConcurrentUpdateError(
        f"user {user_id}: state changed under {policy.max_attempts} attempts in a row"
    )
