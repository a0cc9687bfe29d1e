"""Ports: what the domain needs from storage, as protocols the adapters implement.

The DynamoDB and S3 adapters in :mod:`recsys.adapters` implement these against boto3
clients; the tests' in-memory fakes implement them against dictionaries.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from recsys.catalog import CatalogItem
from recsys.errors import RecsysError
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
