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
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from recsys.config import HistoryLimits
from recsys.errors import StateCorruptError
from recsys.events import MAX_ID_LENGTH, Event, EventType
from recsys.interactions import EVENT_TYPE_CODES, EVENT_TYPES
from recsys.weights import MS_PER_DAY

HISTORY_FORMAT_VERSION = 1
_HEADER = struct.Struct("<BH")  # format version, number of entries
_ENTRY_FIXED = struct.Struct("<qfB")  # timestamp ms, value (NaN if none), event type code

# Largest encoded history: header + per entry the fixed part, two length bytes and two ids.
MAX_ENTRY_BYTES = _ENTRY_FIXED.size + 2 + 2 * MAX_ID_LENGTH


@dataclass(frozen=True, order=True)
class HistoryEntry:
    """One retained event; ordered by time, then id, so ties sort deterministically."""

    timestamp_ms: int
    event_id: str
    item_id: str = field(compare=False)
    event_type: EventType = field(compare=False)
    value: float | None = field(compare=False, default=None)

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

    Layout (little-endian): version u8, count u16, then per entry: timestamp i64, value f32
    (NaN for none), type code u8, event id (u8 length + ASCII), item id (u8 length + ASCII).
    Ids are at most 64 ASCII characters, so an entry takes at most ``MAX_ENTRY_BYTES``.
    """
    parts = [_HEADER.pack(HISTORY_FORMAT_VERSION, len(history))]
    for entry in history:
        value = math.nan if entry.value is None else entry.value
        parts.append(
            _ENTRY_FIXED.pack(entry.timestamp_ms, value, EVENT_TYPE_CODES[entry.event_type])
        )
        for text in (entry.event_id, entry.item_id):
            raw = text.encode("ascii")
            parts.append(bytes([len(raw)]) + raw)
    return b"".join(parts)


def decode_history(blob: bytes) -> tuple[HistoryEntry, ...]:
    """Inverse of :func:`encode_history`.

    Raises
    ------
    StateCorruptError
        If the blob is truncated, has an unknown version or names an unknown event type.
    """
    try:
        version, count = _HEADER.unpack_from(blob, 0)
        if version != HISTORY_FORMAT_VERSION:
            raise StateCorruptError(f"history: unknown format version {version}")
        offset = _HEADER.size
        entries = []
        for _ in range(count):
            timestamp_ms, value, type_code = _ENTRY_FIXED.unpack_from(blob, offset)
            offset += _ENTRY_FIXED.size
            ids = []
            for _ in range(2):
                length = blob[offset]
                ids.append(blob[offset + 1 : offset + 1 + length].decode("ascii"))
                offset += 1 + length
            entries.append(
                HistoryEntry(
                    timestamp_ms=timestamp_ms,
                    event_id=ids[0],
                    item_id=ids[1],
                    event_type=EVENT_TYPES[type_code],
                    value=None if math.isnan(value) else value,
                )
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
