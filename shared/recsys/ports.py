"""Ports: what the domain needs from storage, as protocols the adapters implement.

The DynamoDB and S3 adapters in :mod:`recsys.adapters` implement these against boto3
clients; the tests' in-memory fakes implement them against dictionaries.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from recsys.catalog import CatalogItem
from recsys.errors import RecsysError
from recsys.events import Event
from recsys.state import UserState


class VersionConflict(RecsysError):
    """A conditional write found another version than expected: someone wrote first."""


@dataclass(frozen=True)
class StoredState:
    """A user state with the optimistic-lock version it was read at."""

    state: UserState
    version: int


class ModelPointer(BaseModel):
    """The small object swapped last when a model is published; readers start from it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(description="Version of the serving model.")
    payload_key: str = Field(description="Object key of the npz payload.")
    manifest_key: str = Field(description="Object key of the JSON manifest.")
    sha256: str = Field(description="sha256 of the payload, as in the manifest.")
    published_at: str = Field(description="ISO 8601 UTC time the pointer was swapped.")


class UserStateStore(Protocol):
    """Per-user state with optimistic locking."""

    def get(self, user_id: str) -> StoredState | None:
        """The stored state, or None for a user never seen."""
        ...

    def put(self, state: UserState, expected_version: int) -> int:
        """Write ``state`` if the stored version is ``expected_version`` (0: not stored yet).

        Returns the new version. Raises :class:`VersionConflict` if another writer won.
        """
        ...

    def delete(self, user_id: str) -> bool:
        """Remove the user's state; True if there was one."""
        ...


class ModelStore(Protocol):
    """Versioned model artifacts and the pointer to the serving one."""

    def read_pointer(self) -> ModelPointer | None:
        """The current pointer, or None when no model was ever published."""
        ...

    def read_object(self, key: str) -> bytes:
        """An artifact's bytes. Raises :class:`recsys.errors.ModelNotFoundError` if absent."""
        ...

    def publish(self, version: str, payload: bytes, manifest_json: bytes) -> ModelPointer:
        """Write payload and manifest under versioned keys, then swap the pointer last."""
        ...


class EventArchive(Protocol):
    """The raw event archive that Firehose writes: newline-delimited JSON, one day a folder."""

    def read_lines(self, first_day: date, last_day: date) -> Iterator[bytes]:
        """Every archived line of the days from ``first_day`` to ``last_day``, inclusive."""
        ...


class CatalogSource(Protocol):
    """Catalogue metadata for the filters."""

    def read_catalog(self) -> list[CatalogItem]:
        """Every catalogue entry; empty when there is no catalogue."""
        ...


@dataclass(frozen=True)
class Availability:
    """Catalogue edits of availability made since the model was built.

    Attributes
    ----------
    hidden : frozenset[str]
        Items hidden (or deleted) by an admin; never recommended, whatever the model says.
    shown : frozenset[str]
        Items an admin made available, even if the model was built with them hidden.
    """

    hidden: frozenset[str] = frozenset()
    shown: frozenset[str] = frozenset()


class CatalogStore(Protocol):
    """The catalogue entries admins edit, and the availability aggregate serving reads."""

    def get(self, item_id: str) -> CatalogItem | None:
        """The entry of an item, or None when admins never wrote one."""
        ...

    def put(self, item: CatalogItem) -> None:
        """Create or replace an entry; its availability reaches the aggregate atomically."""
        ...

    def delete(self, item_id: str) -> bool:
        """Remove an entry and hide the item; True if there was an entry."""
        ...

    def availability(self) -> Availability:
        """What is hidden and shown now, read consistently (one read per request)."""
        ...


class DeletionRegistry(Protocol):
    """Markers of deleted users: their events up to the deletion must never be used again."""

    def record(self, user_id: str, deleted_at_ms: int) -> None:
        """Mark ``user_id`` deleted at ``deleted_at_ms`` (epoch milliseconds)."""
        ...

    def deleted_at(self, user_ids: Collection[str]) -> dict[str, int]:
        """Deletion times of those of ``user_ids`` that were deleted, in epoch ms."""
        ...

    def all_deletions(self) -> dict[str, int]:
        """Every marker, user id -> deletion time in epoch ms."""
        ...


@dataclass(frozen=True)
class PublishOutcome:
    """What became of one event given to :meth:`EventPublisher.publish`.

    Exactly one of ``sequence_number`` (the stream took it) and ``error`` (it did not,
    after retries) is set.
    """

    sequence_number: str | None = None
    error: str | None = None


class EventPublisher(Protocol):
    """The event stream, from the producer's side."""

    def publish(self, events: Sequence[Event]) -> list[PublishOutcome]:
        """Put events on the stream, partitioned by user; one outcome per event, in order."""
        ...
