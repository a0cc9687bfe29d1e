"""User state: idempotent, order-independent history merges and a proven size bound."""

import random
import struct

import numpy as np
import pytest

from recsys.config import HistoryLimits
from recsys.errors import StateCorruptError
from recsys.events import MAX_ID_LENGTH, EventType
from recsys.state import (
    HEADER_BYTES,
    MAX_ENTRY_BYTES,
    HistoryEntry,
    UserState,
    decode_history,
    decode_vector,
    encode_history,
    encode_vector,
    merge_history,
)
from tests.factories import make_event

LIMITS = HistoryLimits(max_events=5, max_age_days=1.0)


def test_merging_the_same_events_twice_changes_nothing():
    # GIVEN a history built from three events
    events = [make_event(f"e{n}", item_id=f"i{n}", minutes=n) for n in range(3)]
    history, new = merge_history((), events, LIMITS)

    # WHEN the same events are merged again
    again, new_again = merge_history(history, events, LIMITS)

    # THEN the history is unchanged and none counted as new
    assert new == 3
    assert again == history
    assert new_again == 0


def test_merge_result_does_not_depend_on_arrival_order():
    # GIVEN more events than the cap, some older than the age limit
    events = [make_event(f"e{n:02d}", item_id=f"i{n}", minutes=n * 97) for n in range(12)]
    expected, _ = merge_history((), events, LIMITS)

    # WHEN they arrive shuffled, in several batches, with duplicates
    rng = random.Random(4)
    for _ in range(20):
        arrivals = events + rng.sample(events, 6)
        rng.shuffle(arrivals)
        history: tuple[HistoryEntry, ...] = ()
        for start in range(0, len(arrivals), 4):
            history, _ = merge_history(history, arrivals[start : start + 4], LIMITS)

        # THEN the final history is the same as the clean, ordered one
        assert history == expected


def test_history_keeps_only_the_newest_events_up_to_the_count_cap():
    events = [make_event(f"e{n}", minutes=n) for n in range(8)]
    history, _ = merge_history((), events, LIMITS)
    assert [entry.event_id for entry in history] == ["e3", "e4", "e5", "e6", "e7"]


def test_history_drops_events_older_than_the_age_cap_from_the_newest():
    # GIVEN an event 25 hours before the newest one, with a one-day age cap
    events = [make_event("old", minutes=0), make_event("new", minutes=25 * 60)]

    # WHEN merged
    history, _ = merge_history((), events, LIMITS)

    # THEN only the event within a day of the newest remains
    assert [entry.event_id for entry in history] == ["new"]


def test_history_event_exactly_at_the_age_cap_is_kept():
    events = [make_event("edge", minutes=0), make_event("new", minutes=24 * 60)]
    history, _ = merge_history((), events, LIMITS)
    assert [entry.event_id for entry in history] == ["edge", "new"]


def test_history_round_trips_through_its_binary_encoding():
    events = [
        make_event("a", event_type=EventType.RATING, value=4.0, minutes=1),
        make_event("b", event_type=EventType.DISLIKE, item_id="x:y@z", minutes=2),
    ]
    history, _ = merge_history((), events, LIMITS)
    assert decode_history(encode_history(history)) == history
    assert decode_history(encode_history(history))[0].value == 4.0
    assert decode_history(encode_history(history))[1].value is None


def test_largest_allowed_state_serializes_under_100_kb():
    # GIVEN the largest history the limits allow, every id at its maximum length
    limits = HistoryLimits()
    long_id = "x" * (MAX_ID_LENGTH - 4)
    events = [
        make_event(
            f"{n:04d}{long_id}",
            user_id="u" * MAX_ID_LENGTH,
            item_id=f"{n:04d}{long_id}",
            event_type=EventType.RATING,
            value=5.0,
            minutes=n,
        )
        for n in range(limits.max_events + 50)
    ]
    history, _ = merge_history((), events, limits)
    vector = np.ones(256, dtype=np.float32)  # the largest factor count ALSConfig allows

    # WHEN encoded as stored
    encoded = encode_history(history)
    size = len(encoded) + len(encode_vector(vector)) + 2 * MAX_ID_LENGTH + 200  # keys, version

    # THEN every entry is at its proven maximum and the whole item is under 100 KB
    assert len(history) == limits.max_events
    assert len(encoded) == HEADER_BYTES + limits.max_events * MAX_ENTRY_BYTES
    assert size < 100_000


def test_truncated_history_blob_is_reported_as_corrupt():
    history, _ = merge_history((), [make_event("a")], LIMITS)
    with pytest.raises(StateCorruptError, match="history"):
        decode_history(encode_history(history)[:-3])


def test_vector_round_trips_as_float32_bytes():
    vector = np.array([0.5, -1.25, 3.0], dtype=np.float32)
    blob = encode_vector(vector)
    assert len(blob) == 12
    np.testing.assert_array_equal(decode_vector(blob), vector)


def test_vector_of_a_wrong_length_is_reported_as_corrupt():
    with pytest.raises(StateCorruptError, match="vector"):
        decode_vector(b"\x00" * 7)


def test_seen_items_are_the_items_in_the_history():
    history, _ = merge_history(
        (), [make_event("a", item_id="i1"), make_event("b", item_id="i2")], LIMITS
    )
    assert UserState(user_id="u1", history=history).seen_items == {"i1", "i2"}


def test_history_written_in_format_version_1_is_still_read():
    # GIVEN a blob in the row-by-row layout of version 1, built by hand:
    # version 1, one entry; ts, value 4.5, type code 4 (rating); ids "e1" and "i9"
    blob = (
        struct.pack("<BH", 1, 1)
        + struct.pack("<qfB", 1_700_000_000_000, 4.5, 4)
        + bytes([2])
        + b"e1"
        + bytes([2])
        + b"i9"
    )

    # WHEN decoded
    (entry,) = decode_history(blob)

    # THEN every field comes back
    assert entry == HistoryEntry(1_700_000_000_000, "e1", "i9", EventType.RATING, 4.5)


def test_history_whose_id_blocks_disagree_with_the_count_is_corrupt():
    history, _ = merge_history((), [make_event("a"), make_event("b", minutes=1)], LIMITS)
    blob = encode_history(history)
    with pytest.raises(StateCorruptError, match="ids do not match"):
        decode_history(blob[:-3] + b"x\ny\n")


def test_history_with_an_unknown_event_type_code_is_corrupt():
    history, _ = merge_history((), [make_event("a")], LIMITS)
    blob = bytearray(encode_history(history))
    blob[HEADER_BYTES + 12] = 200  # the first type code, after 8-byte ts and 4-byte value
    with pytest.raises(StateCorruptError, match="event type"):
        decode_history(bytes(blob))
