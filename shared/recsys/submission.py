"""Events sent over REST: validated one by one, the valid ones put on the stream.

A batch is never all-or-nothing: each event is accepted (it is on the stream, with its
sequence number) or rejected with a reason, and the caller resends only the rejected ones
that say they may be retried. Resending an accepted event is harmless too: ingest keeps a
user's history as a set keyed by ``event_id`` and training keeps the first of any repeated
``event_id``, so an event sent twice counts once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from recsys.errors import InvalidEventError
from recsys.events import Event, parse_event
from recsys.ports import EventPublisher

logger = logging.getLogger(__name__)

MAX_EVENTS_PER_CALL = 100


class EventBatch(BaseModel):
    """Up to 100 events; each is checked on its own, so one bad event rejects only itself."""

    model_config = ConfigDict(extra="forbid")

    events: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_EVENTS_PER_CALL,
        description="Event objects: event_id, user_id (the caller), item_id, event_type "
        "(view, click, add_to_cart, purchase, rating, like, dislike), timestamp (ISO 8601 "
        "with a zone, or epoch ms), and optionally value and session_id.",
    )


class AcceptedEvent(BaseModel):
    index: int = Field(description="Position of the event in the request, from 0.")
    event_id: str
    sequence_number: str = Field(description="Its position on the stream.")


class RejectedEvent(BaseModel):
    index: int = Field(description="Position of the event in the request, from 0.")
    event_id: str | None = Field(description="The event's id, when it had a readable one.")
    reason: str = Field(description="The field at fault and why, or why the stream refused.")
    retryable: bool = Field(
        description="True when sending the same event again may succeed (the stream was "
        "busy); False when the event itself is invalid."
    )


class SubmissionResult(BaseModel):
    """Every event of the request, either accepted or rejected."""

    accepted: list[AcceptedEvent]
    rejected: list[RejectedEvent]


def submit_events(
    *,
    caller_id: str,
    raw_events: Sequence[Any],
    publisher: EventPublisher,
    now: datetime | None = None,
) -> SubmissionResult:
    """Validate each event, put the valid ones on the stream, report on every one.

    An event is rejected when :func:`recsys.events.parse_event` refuses it, when its
    ``user_id`` is not ``caller_id`` (nobody sends events for someone else), when its
    ``event_id`` repeats an earlier one of the same request, or when the stream still
    refuses it after the publisher's retries (``retryable``).

    Raises
    ------
    botocore.exceptions.ClientError
        When the stream cannot be reached at all; nothing can be said per event then.
    """
    rejected: list[RejectedEvent] = []
    valid: list[tuple[int, Event]] = []
    seen_ids: set[str] = set()

    for index, raw in enumerate(raw_events):
        if not isinstance(raw, dict):
            rejected.append(_invalid(index, None, "event: must be a JSON object"))
            continue
        try:
            event = parse_event(raw, now=now)
        except InvalidEventError as error:
            rejected.append(_invalid(index, error.event_id, error.reason))
            continue
        if event.user_id != caller_id:
            reason = "user_id: must be the authenticated user"
            rejected.append(_invalid(index, event.event_id, reason))
        elif event.event_id in seen_ids:
            reason = "event_id: repeats an earlier event of this request"
            rejected.append(_invalid(index, event.event_id, reason))
        else:
            seen_ids.add(event.event_id)
            valid.append((index, event))

    accepted: list[AcceptedEvent] = []
    outcomes = publisher.publish([event for _, event in valid]) if valid else []
    for (index, event), outcome in zip(valid, outcomes, strict=True):
        if outcome.sequence_number is not None:
            accepted.append(
                AcceptedEvent(
                    index=index, event_id=event.event_id, sequence_number=outcome.sequence_number
                )
            )
        else:
            reason = f"stream: {outcome.error or 'refused'}; send the event again later"
            rejected.append(
                RejectedEvent(index=index, event_id=event.event_id, reason=reason, retryable=True)
            )

    rejected.sort(key=lambda entry: entry.index)
    logger.info(
        "submitted %d events for %s: %d accepted, %d rejected",
        len(raw_events),
        caller_id,
        len(accepted),
        len(rejected),
    )
    return SubmissionResult(accepted=accepted, rejected=rejected)


def _invalid(index: int, event_id: str | None, reason: str) -> RejectedEvent:
    return RejectedEvent(index=index, event_id=event_id, reason=reason, retryable=False)
