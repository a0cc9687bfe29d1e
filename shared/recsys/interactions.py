"""Columnar interaction logs: many events at once, as training and benchmarks need them.

A list of pydantic events is convenient for a few thousand records and far too heavy for
millions. :class:`InteractionLog` holds the same facts as integer codes and flat arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from recsys.events import Event, EventType

EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)
EVENT_TYPE_CODES: dict[EventType, int] = {t: code for code, t in enumerate(EVENT_TYPES)}


@dataclass(frozen=True)
class InteractionLog:
    """Events as parallel arrays; row ``j`` is one event.

    Attributes
    ----------
    users, items : NDArray[np.int32], shape (n_events,)
        Indices into ``user_ids`` and ``item_ids``.
    event_types : NDArray[np.uint8], shape (n_events,)
        Codes into :data:`EVENT_TYPES`.
    values : NDArray[np.float32], shape (n_events,)
        The event's value, NaN where it has none.
    timestamps_ms : NDArray[np.int64], shape (n_events,)
        Epoch milliseconds, UTC.
    user_ids, item_ids : tuple[str, ...]
        External ids of the codes.
    """

    users: NDArray[np.int32]
    items: NDArray[np.int32]
    event_types: NDArray[np.uint8]
    values: NDArray[np.float32]
    timestamps_ms: NDArray[np.int64]
    user_ids: tuple[str, ...]
    item_ids: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.users.shape[0])

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> InteractionLog:
        """Build a log from events, keeping the first of any repeated ``event_id``.

        Kinesis and Firehose deliver at least once, so the archive may hold an event twice;
        training must count it once.
        """
        user_codes: dict[str, int] = {}
        item_codes: dict[str, int] = {}
        seen_event_ids: set[str] = set()
        users, items, types, values, stamps = [], [], [], [], []

        for event in events:
            if event.event_id in seen_event_ids:
                continue
            seen_event_ids.add(event.event_id)
            users.append(user_codes.setdefault(event.user_id, len(user_codes)))
            items.append(item_codes.setdefault(event.item_id, len(item_codes)))
            types.append(EVENT_TYPE_CODES[event.event_type])
            values.append(np.nan if event.value is None else event.value)
            stamps.append(event.timestamp_ms)

        return cls(
            users=np.asarray(users, dtype=np.int32),
            items=np.asarray(items, dtype=np.int32),
            event_types=np.asarray(types, dtype=np.uint8),
            values=np.asarray(values, dtype=np.float32),
            timestamps_ms=np.asarray(stamps, dtype=np.int64),
            user_ids=tuple(user_codes),
            item_ids=tuple(item_codes),
        )

    def select(self, rows: NDArray[np.bool_] | NDArray[np.intp]) -> InteractionLog:
        """A log of the chosen rows, sharing the same id tables."""
        return InteractionLog(
            users=self.users[rows],
            items=self.items[rows],
            event_types=self.event_types[rows],
            values=self.values[rows],
            timestamps_ms=self.timestamps_ms[rows],
            user_ids=self.user_ids,
            item_ids=self.item_ids,
        )
