"""Deleting a user: their state goes at once, their past events stay out of training.

The archive keeps every event Firehose wrote, and the stream may still hold events of the
user that ingest has not applied. So a deletion leaves a marker with its time: ingest drops
the user's events up to that time (it cannot re-create the state from them), and the nightly
job leaves them out of training. Events stamped after the deletion are a returning user's
new activity and are used as usual.

The marker is written before the state is deleted: if the deletion fails half-way, a retry
finds the marker in place and deletes the state, and no ingest that starts afterwards can
re-create it from old events.

NOTE: an ingest batch that read the markers just before the deletion and writes just after
it can still store that batch's events (a window of milliseconds). Training leaves them out
all the same, and deleting again removes them; closing the window needs the state write
conditioned on the marker (a DynamoDB transaction across the two tables).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from recsys.errors import StateCorruptError
from recsys.ports import DeletionRegistry, UserStateStore

logger = logging.getLogger(__name__)


class DeletionReceipt(BaseModel):
    """What was deleted, and from when on the user's old events are never used again."""

    user_id: str
    deleted_at: str = Field(description="Time of the deletion, ISO 8601 UTC, milliseconds.")
    state_deleted: bool = Field(description="True if the user had a stored state.")
    history_events_deleted: int = Field(description="Events of the stored history removed.")
    excluded_from_training: str = Field(
        description="Which of the user's events no training run will use again."
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def delete_user(
    *,
    user_id: str,
    states: UserStateStore,
    deletions: DeletionRegistry,
    clock: Callable[[], datetime] = _utc_now,
) -> DeletionReceipt:
    """Delete a user's state and mark the user deleted as of now.

    Parameters
    ----------
    user_id
        The user to delete; a user never seen still gets a marker and a receipt.
    states
        Where the user's state lives.
    deletions
        Where the marker goes.
    clock
        Aware UTC time of the deletion.

    Raises
    ------
    botocore.exceptions.ClientError
        When a store fails after its retries; the deletion may be repeated safely.
    """
    deleted_at = clock().astimezone(UTC)
    deleted_at_ms = int(deleted_at.timestamp() * 1000)

    try:
        stored = states.get(user_id)
        history_events = len(stored.state.history) if stored else 0
    except StateCorruptError:
        # An unreadable state is deleted all the same; only its size is unknown.
        history_events = 0

    deletions.record(user_id, deleted_at_ms)
    state_deleted = states.delete(user_id)

    stamp = deleted_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    logger.info(
        "deleted user %s: state %s, %d history events",
        user_id,
        "removed" if state_deleted else "absent",
        history_events,
    )
    return DeletionReceipt(
        user_id=user_id,
        deleted_at=stamp,
        state_deleted=state_deleted,
        history_events_deleted=history_events if state_deleted else 0,
        excluded_from_training=f"events up to {stamp}",
    )


def outlives_deletion(user_id: str, timestamp_ms: int, deleted_at: Mapping[str, int]) -> bool:
    """True unless the event's user was deleted at or after the event's timestamp."""
    deleted_at_ms = deleted_at.get(user_id)
    return deleted_at_ms is None or timestamp_ms > deleted_at_ms
