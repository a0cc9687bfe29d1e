"""Event validation: the one door into the domain names the field and the reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from recsys.errors import InvalidEventError
from recsys.events import MAX_EVENT_BYTES, EventType, parse_event

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _event(**changes: object) -> dict[str, object]:
    event: dict[str, object] = {
        "event_id": "e-1",
        "user_id": "u-1",
        "item_id": "i-1",
        "event_type": "purchase",
        "timestamp": "2026-12-01T11:59:00Z",
    }
    event.update(changes)
    return {key: value for key, value in event.items() if value is not None}


def _reason(raw: bytes | str | dict[str, object]) -> str:
    with pytest.raises(InvalidEventError) as caught:
        parse_event(raw, now=NOW)
    return caught.value.reason


def test_valid_json_becomes_an_event_in_utc():
    event = parse_event(json.dumps(_event(timestamp="2026-12-01T12:59:00+01:00")), now=NOW)
    assert event.event_type is EventType.PURCHASE
    assert event.timestamp == datetime(2026, 12, 1, 11, 59, tzinfo=UTC)
    assert event.schema_version == 1


def test_epoch_milliseconds_are_accepted_as_utc():
    millis = int(datetime(2026, 12, 1, 11, 0, tzinfo=UTC).timestamp() * 1000)
    event = parse_event(json.dumps(_event(timestamp=millis)).encode(), now=NOW)
    assert event.timestamp_ms == millis


def test_bytes_str_and_dict_inputs_give_the_same_event():
    raw = _event(value=4.5, session_id="s-9")
    assert parse_event(raw, now=NOW) == parse_event(json.dumps(raw), now=NOW)
    assert parse_event(json.dumps(raw).encode(), now=NOW) == parse_event(raw, now=NOW)


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"user_id": "has space"}, "user_id: must be 1 to 64 characters"),
        ({"item_id": "x" * 65}, "item_id: must be 1 to 64 characters"),
        ({"event_type": "teleport"}, "event_type: Input should be"),
        ({"timestamp": 874724710}, "timestamp: epoch milliseconds expected"),
        ({"timestamp": "2026-12-01T12:10:00Z"}, "timestamp: is more than 5 minutes in the future"),
        ({"timestamp": "2026-12-01T11:00:00"}, "timestamp: must carry a time zone"),
        ({"timestamp": True}, "timestamp: must be ISO 8601 or epoch milliseconds"),
        ({"colour": "red"}, "colour: is not a known field"),
        ({"event_id": None}, "event_id: Field required"),
        ({"schema_version": 2}, "schema_version: Input should be 1"),
    ],
)
def test_invalid_field_is_named_with_its_reason(changes, reason):
    assert _reason(json.dumps(_event(**changes))).startswith(reason)


def test_timestamp_exactly_five_minutes_ahead_is_accepted():
    ahead = (NOW + timedelta(minutes=5)).isoformat()
    assert parse_event(_event(timestamp=ahead), now=NOW).timestamp == NOW + timedelta(minutes=5)


def test_non_finite_numbers_are_refused():
    assert "value: must be a finite number" in _reason('{"event_id": "e", "value": NaN}')
    assert "finite" in _reason(_event(timestamp=float("inf")))


def test_every_failing_field_is_reported_in_one_reason():
    reason = _reason(_event(user_id="", event_type="nope"))
    assert "user_id:" in reason and "event_type:" in reason


def test_undecodable_input_is_an_invalid_event_not_a_crash():
    assert _reason(b"\xff") == "event: not valid UTF-8 JSON (UnicodeDecodeError)"
    assert _reason(b"{not json") == "event: not valid UTF-8 JSON (JSONDecodeError)"
    assert _reason(b"[1, 2]") == "event: must be a JSON object"


def test_oversized_record_is_refused_before_parsing():
    padded = json.dumps(_event(item_id="i" * (MAX_EVENT_BYTES + 10)))
    assert _reason(padded) == f"event: {len(padded)} bytes exceeds the limit of {MAX_EVENT_BYTES}"


def test_the_event_id_travels_with_the_error_when_it_can_be_read():
    with pytest.raises(InvalidEventError) as caught:
        parse_event(_event(event_type="teleport"), now=NOW)
    assert caught.value.event_id == "e-1"
