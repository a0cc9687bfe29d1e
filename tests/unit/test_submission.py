"""Events over REST: each one accepted or rejected with a reason, never the batch as a whole."""

from datetime import UTC, datetime

from recsys.submission import submit_events
from tests.fakes import RecordingPublisher

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def _event(event_id: str, user: str = "u1", **fields: object) -> dict[str, object]:
    return {
        "event_id": event_id,
        "user_id": user,
        "item_id": "i1",
        "event_type": "view",
        "timestamp": "2026-11-02T11:59:00Z",
        **fields,
    }


def test_each_event_is_accepted_or_rejected_with_its_index_and_reason():
    # GIVEN a valid event, one of another user, an invalid one, a repeat and a non-object
    raw = [_event("a"), _event("b", user="u2"), _event("c", event_type="stare"), _event("a"), 7]
    publisher = RecordingPublisher()

    # WHEN they are submitted by u1
    result = submit_events(caller_id="u1", raw_events=raw, publisher=publisher, now=NOW)

    # THEN only the first reaches the stream; every other one is rejected, in order
    assert [entry.index for entry in result.accepted] == [0]
    assert [event.event_id for event in publisher.published] == ["a"]
    assert [(entry.index, entry.reason.split(":")[0]) for entry in result.rejected] == [
        (1, "user_id"),
        (2, "event_type"),
        (3, "event_id"),
        (4, "event"),
    ]
    assert not any(entry.retryable for entry in result.rejected)


def test_event_the_stream_still_refuses_is_rejected_as_retryable():
    # GIVEN a stream that keeps refusing one of two events
    publisher = RecordingPublisher(refuse=frozenset({"b"}))

    # WHEN both are submitted
    result = submit_events(
        caller_id="u1", raw_events=[_event("a"), _event("b")], publisher=publisher, now=NOW
    )

    # THEN the other is accepted, and the refused one may be sent again
    assert [entry.event_id for entry in result.accepted] == ["a"]
    (refused,) = result.rejected
    assert (refused.event_id, refused.retryable) == ("b", True)
    assert refused.reason.startswith("stream:")


def test_batch_with_no_valid_event_does_not_call_the_stream():
    # GIVEN only invalid events
    publisher = RecordingPublisher()

    # WHEN they are submitted
    result = submit_events(caller_id="u1", raw_events=[{}], publisher=publisher, now=NOW)

    # THEN nothing is published and the event is rejected
    assert publisher.published == []
    assert len(result.rejected) == 1
