"""A user's state: the bounded recent history, and the vector folded from it.

The history is a set of events keyed by ``event_id``: newest ``max_events`` by
``(timestamp, event_id)``, none older than ``max_age_days`` before the user's newest event.
Because it is a pure function of the set of events ever applied, applying an event twice or
in another order gives the same state. That is what makes ingestion correct under Kinesis's
at-least-once, per-shard-ordered delivery.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from recsys.config import HistoryLimits
from recsys.errors import StateCorruptError
from recsys.events import MAX_ID_LENGTH, Event, EventType
from recsys.interactions import EVENT_TYPE_CODES, EVENT_TYPES
from recsys.weights import MS_PER_DAY

HISTORY_FORMAT_VERSION = 2
# Version 2, columnar: version u8, count u16, length of the event-id block u32.
_HEADER = struct.Struct("<BHI")
# Version 1, row by row (still read): version u8, count u16, then per entry the fixed part.
_HEADER_V1 = struct.Struct("<BH")
_ENTRY_FIXED = struct.Struct("<qfB")  # timestamp ms, value (NaN if none), event type code
_ID_END = "\n"  # ids match ID_PATTERN, which has no line break

# Per entry at most: the fixed columns, then two ids of at most 64 ASCII bytes, each ended by
# one byte. A history of n entries takes at most _HEADER.size + n * MAX_ENTRY_BYTES.
MAX_ENTRY_BYTES = _ENTRY_FIXED.size + 2 * (MAX_ID_LENGTH + 1)
HEADER_BYTES = _HEADER.size


class HistoryEntry(NamedTuple):
    """One retained event; ordered by time, then id, so ties sort deterministically.

    A named tuple rather than a dataclass: a request decodes up to 500 of these, and tuples
    are built several times faster. Event ids are unique within a history, so ordering never
    looks past the first two fields.
    """

    timestamp_ms: int
    event_id: str
    item_id: str
    event_type: EventType
    value: float | None = None

    @classmethod
    def from_event(cls, event: Event) -> HistoryEntry:
        return cls(
            timestamp_ms=event.timestamp_ms,
            event_id=event.event_id,
            item_id=event.item_id,
            event_type=event.event_type,
            value=event.value,
        )


@dataclass(frozen=True)
class UserState:
    """What is stored per user.

    Attributes
    ----------
    user_id : str
    history : tuple[HistoryEntry, ...]
        Oldest first, bounded by :class:`HistoryLimits`.
    vector : NDArray[np.float32] | None, shape (k,)
        Folded against the model ``model_version``; None before the first fold.
    model_version : str | None
        The model whose latent basis ``vector`` lives in.
    last_sequence : str | None
        Highest stream sequence number applied, for "events reflected up to here".
    """

    user_id: str
    history: tuple[HistoryEntry, ...] = ()
    vector: NDArray[np.float32] | None = None
    model_version: str | None = None
    last_sequence: str | None = None

    @property
    def seen_items(self) -> frozenset[str]:
        """Items the user has interacted with inside the retained history."""
        return frozenset(entry.item_id for entry in self.history)


def merge_history(
    history: Iterable[HistoryEntry],
    events: Iterable[Event | HistoryEntry],
    limits: HistoryLimits,
) -> tuple[tuple[HistoryEntry, ...], int]:
    """Add events to a history, idempotently and independently of arrival order.

    Parameters
    ----------
    history
        The stored history.
    events
        New events; an ``event_id`` already present keeps its stored entry.
    limits
        Count and age bounds. Age is measured from the newest event in the merged set, so the
        result depends only on the events, never on the wall clock at processing time.

    Returns
    -------
    tuple[tuple[HistoryEntry, ...], int]
        The new history, oldest first, and how many events were new (not duplicates).
    """
    by_id = {entry.event_id: entry for entry in history}
    new_count = 0
    for event in events:
        if event.event_id in by_id:
            continue
        entry = event if isinstance(event, HistoryEntry) else HistoryEntry.from_event(event)
        by_id[entry.event_id] = entry
        new_count += 1

    ordered = sorted(by_id.values())
    if not ordered:
        return (), new_count

    oldest_kept_ms = ordered[-1].timestamp_ms - limits.max_age_days * MS_PER_DAY
    recent = [entry for entry in ordered if entry.timestamp_ms >= oldest_kept_ms]
    return tuple(recent[-limits.max_events :]), new_count


def encode_history(history: tuple[HistoryEntry, ...]) -> bytes:
    """Compact binary form of a history, for a DynamoDB binary attribute.

    Layout (little-endian, columnar so that decoding is a few bulk operations): version u8,
    count u16, event-id block length u32; then the timestamps (i64 each), values (f32 each,
    NaN for none) and type codes (u8 each); then the event ids and then the item ids, ASCII,
    each ended by a line break. A history of n entries takes at most
    ``HEADER_BYTES + n * MAX_ENTRY_BYTES`` bytes.
    """
    event_ids = "".join(entry.event_id + _ID_END for entry in history).encode("ascii")
    item_ids = "".join(entry.item_id + _ID_END for entry in history).encode("ascii")
    timestamps = np.array([entry.timestamp_ms for entry in history], dtype="<i8")
    values = np.array(
        [math.nan if entry.value is None else entry.value for entry in history], dtype="<f4"
    )
    types = np.array([EVENT_TYPE_CODES[entry.event_type] for entry in history], dtype=np.uint8)
    header = _HEADER.pack(HISTORY_FORMAT_VERSION, len(history), len(event_ids))
    return b"".join(
        (header, timestamps.tobytes(), values.tobytes(), types.tobytes(), event_ids, item_ids)
    )


def decode_history(blob: bytes) -> tuple[HistoryEntry, ...]:
    """Inverse of :func:`encode_history`; also reads the version 1 layout.

    Raises
    ------
    StateCorruptError
        If the blob is truncated, has an unknown version, names an unknown event type or its
        parts disagree on the number of entries.
    """
    if blob[:1] == b"\x01":
        return _decode_history_v1(blob)
    try:
        version, count, event_ids_length = _HEADER.unpack_from(blob, 0)
    except struct.error as error:
        raise StateCorruptError(f"history: cannot decode ({error})") from None
    if version != HISTORY_FORMAT_VERSION:
        raise StateCorruptError(f"history: unknown format version {version}")

    columns_end = _HEADER.size + count * _ENTRY_FIXED.size
    if len(blob) < columns_end + event_ids_length:
        raise StateCorruptError("history: truncated")
    timestamps = np.frombuffer(blob, dtype="<i8", count=count, offset=_HEADER.size)
    values = np.frombuffer(blob, dtype="<f4", count=count, offset=_HEADER.size + 8 * count)
    types = np.frombuffer(blob, dtype=np.uint8, count=count, offset=_HEADER.size + 12 * count)
    if count and int(types.max()) >= len(EVENT_TYPES):
        raise StateCorruptError("history: unknown event type code")

    try:
        ids = blob[columns_end:].decode("ascii")
    except UnicodeDecodeError as error:
        raise StateCorruptError(f"history: cannot decode ({error})") from None
    event_ids = ids[:event_ids_length].split(_ID_END)
    item_ids = ids[event_ids_length:].split(_ID_END)
    # Each block ends with a terminator, so a well-formed one splits into count + 1 parts,
    # the last one empty.
    if len(event_ids) != count + 1 or len(item_ids) != count + 1 or event_ids[-1] or item_ids[-1]:
        raise StateCorruptError("history: ids do not match the number of entries")

    event_types = [EVENT_TYPES[code] for code in types.tolist()]
    entry_values = [None if value != value else value for value in values.tolist()]
    return tuple(
        map(
            HistoryEntry._make,
            zip(timestamps.tolist(), event_ids, item_ids, event_types, entry_values, strict=False),
        )
    )


def _decode_history_v1(blob: bytes) -> tuple[HistoryEntry, ...]:
    """The row-by-row layout of format version 1: per entry the fixed part, then each id
    as a u8 length and its ASCII bytes."""
    unpack_fixed, fixed_size, types = _ENTRY_FIXED.unpack_from, _ENTRY_FIXED.size, EVENT_TYPES
    try:
        _, count = _HEADER_V1.unpack_from(blob, 0)
        offset = _HEADER_V1.size
        entries = []
        for _ in range(count):
            timestamp_ms, value, type_code = unpack_fixed(blob, offset)
            offset += fixed_size
            end = offset + 1 + blob[offset]
            event_id = blob[offset + 1 : end].decode("ascii")
            offset = end + 1 + blob[end]
            item_id = blob[end + 1 : offset].decode("ascii")
            # NaN is the only float unequal to itself: it encodes "no value".
            entry_value = None if value != value else value
            entries.append(
                HistoryEntry(timestamp_ms, event_id, item_id, types[type_code], entry_value)
            )
    except (struct.error, IndexError, UnicodeDecodeError) as error:
        raise StateCorruptError(f"history: cannot decode ({error})") from None
    if offset != len(blob):
        raise StateCorruptError("history: trailing bytes after the last entry")
    return tuple(entries)


def encode_vector(vector: NDArray[np.float32]) -> bytes:
    """Little-endian float32 bytes: 4k bytes, never a list of Decimals."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def decode_vector(blob: bytes) -> NDArray[np.float32]:
    """Inverse of :func:`encode_vector`; raises :class:`StateCorruptError` on a bad length."""
    if len(blob) % 4:
        raise StateCorruptError(f"vector: {len(blob)} bytes is not a whole number of float32")
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)
