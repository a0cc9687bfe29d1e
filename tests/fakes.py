"""In-memory implementations of the ports, for unit tests that run without AWS or sockets."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, date, datetime

from recsys.catalog import CatalogItem
from recsys.errors import ModelNotFoundError
from recsys.events import Event
from recsys.ports import ModelPointer, PublishOutcome, StoredState, VersionConflict
from recsys.state import UserState


class InMemoryUserStateStore:
    """Dictionary-backed :class:`~recsys.ports.UserStateStore` with the same locking rules."""

    def __init__(self) -> None:
        self.items: dict[str, StoredState] = {}
        self.writes = 0

    def get(self, user_id: str) -> StoredState | None:
        return self.items.get(user_id)

    def put(self, state: UserState, expected_version: int) -> int:
        current = self.items.get(state.user_id)
        if (current.version if current else 0) != expected_version:
            raise VersionConflict(f"{state.user_id}: expected version {expected_version}")
        self.items[state.user_id] = StoredState(state, expected_version + 1)
        self.writes += 1
        return expected_version + 1

    def delete(self, user_id: str) -> bool:
        return self.items.pop(user_id, None) is not None


class InMemoryModelStore:
    """Dictionary-backed :class:`~recsys.ports.ModelStore`; records the order of writes."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.pointer: ModelPointer | None = None
        self.write_order: list[str] = []

    def read_pointer(self) -> ModelPointer | None:
        return self.pointer

    def read_object(self, key: str) -> bytes:
        if key not in self.objects:
            raise ModelNotFoundError(f"no object {key}")
        return self.objects[key]

    def publish(self, version: str, payload: bytes, manifest_json: bytes) -> ModelPointer:
        import hashlib

        payload_key, manifest_key = f"models/{version}/model.npz", f"models/{version}/manifest.json"
        for key, body in ((payload_key, payload), (manifest_key, manifest_json)):
            self.objects[key] = body
            self.write_order.append(key)
        self.pointer = ModelPointer(
            version=version,
            payload_key=payload_key,
            manifest_key=manifest_key,
            sha256=hashlib.sha256(payload).hexdigest(),
            published_at=datetime.now(UTC).isoformat(),
        )
        self.write_order.append("models/current.json")
        return self.pointer


class InMemoryArchive:
    """:class:`~recsys.ports.EventArchive` over a dict of day -> lines."""

    def __init__(self, days: dict[date, list[bytes]] | None = None) -> None:
        self.days = days or {}

    def read_lines(self, first_day: date, last_day: date) -> Iterator[bytes]:
        for day in sorted(self.days):
            if first_day <= day <= last_day:
                yield from self.days[day]


class InMemoryCatalog:
    def __init__(self, items: list[CatalogItem] | None = None) -> None:
        self.items = items or []

    def read_catalog(self) -> list[CatalogItem]:
        return list(self.items)


class InMemoryDeletionRegistry:
    """Dictionary-backed :class:`~recsys.ports.DeletionRegistry`; logs calls in order."""

    def __init__(self, markers: dict[str, int] | None = None, log: list[str] | None = None) -> None:
        self.markers = dict(markers or {})
        self.log = log if log is not None else []

    def record(self, user_id: str, deleted_at_ms: int) -> None:
        self.log.append(f"marker {user_id}")
        self.markers[user_id] = deleted_at_ms

    def deleted_at(self, user_ids: Collection[str]) -> dict[str, int]:
        return {user: self.markers[user] for user in user_ids if user in self.markers}

    def all_deletions(self) -> dict[str, int]:
        return dict(self.markers)


class RecordingPublisher:
    """:class:`~recsys.ports.EventPublisher` that keeps what it was given; refuses some ids."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.published: list[Event] = []
        self.refuse = refuse

    def publish(self, events: Sequence[Event]) -> list[PublishOutcome]:
        outcomes = []
        for event in events:
            if event.event_id in self.refuse:
                outcomes.append(PublishOutcome(error="ProvisionedThroughputExceededException"))
            else:
                self.published.append(event)
                outcomes.append(PublishOutcome(sequence_number=str(len(self.published))))
        return outcomes
