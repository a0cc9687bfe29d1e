"""Serving: the model cache every warm container keeps, and the recommendation use case.

A container loads the model once and re-checks the pointer at most every
``refresh_seconds``. A pointer that leads to anything broken (missing, corrupt, wrong shape,
non-finite) is refused and logged; the container keeps serving the last good model, or
nothing if it never had one (:class:`ModelNotFoundError`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from recsys.catalog import ATTRIBUTE_NAME_PATTERN, ATTRIBUTE_VALUE_PATTERN
from recsys.errors import ModelIntegrityError, ModelNotFoundError, UnknownItemError
from recsys.events import Identifier
from recsys.foldin import fold_history
from recsys.model import ItemModel, load_model, parse_manifest
from recsys.ports import Availability, ModelPointer, ModelStore, UserStateStore
from recsys.scoring import Filters, rank_by_popularity, rank_for_vector, rank_similar
from recsys.state import UserState

logger = logging.getLogger(__name__)

MAX_K = 100
MAX_FILTER_IDS = 100
MAX_CATEGORY_FILTERS = 32
MAX_ATTRIBUTE_FILTERS = 16
MAX_RANK_ITEMS = 500

CategoryName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# "name:value": the name's pattern has no colon, so the first colon separates the two.
ATTRIBUTE_FILTER_PATTERN = (
    f"{ATTRIBUTE_NAME_PATTERN.removesuffix('$')}:{ATTRIBUTE_VALUE_PATTERN.removeprefix('^')}"
)
AttributeFilter = Annotated[
    str,
    StringConstraints(pattern=ATTRIBUTE_FILTER_PATTERN),
    Field(description="An attribute as name:value, e.g. brand:acme."),
]

REASON_PERSONALIZED = "personalized"
REASON_POPULAR = "popular"
REASON_SIMILAR = "similar"
REASON_UNAVAILABLE = "unavailable"
REASON_UNKNOWN_ITEM = "unknown_item"


class ModelCache:
    """The serving model of one container, refreshed from the pointer at a bounded rate.

    Parameters
    ----------
    store
        Where the pointer and artifacts live.
    refresh_seconds
        Minimum time between two pointer reads.
    clock
        Monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        store: ModelStore,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._model: ItemModel | None = None
        self._checked_at: float | None = None
        self.last_error: str | None = None

    def current(self) -> ItemModel | None:
        """The model to serve with, after a pointer check if one is due."""
        now = self._clock()
        if self._checked_at is None or now - self._checked_at >= self._refresh_seconds:
            self._checked_at = now
            self._refresh()
        return self._model

    def require(self) -> ItemModel:
        """Like :meth:`current`, raising :class:`ModelNotFoundError` when there is none."""
        model = self.current()
        if model is None:
            raise ModelNotFoundError(self.last_error or "no model has been published yet")
        return model

    def _refresh(self) -> None:
        # Any failure here must leave the previous model serving, whatever raised it: a
        # storage error is as much a reason to keep the last good model as a corrupt file.
        try:
            pointer = self._store.read_pointer()
            if pointer is None:
                self.last_error = "no model has been published yet"
                return
            if self._model is not None and pointer.version == self._model.version:
                return
            self._model = load_pointed_model(self._store, pointer)
            self.last_error = None
        except Exception as error:  # noqa: BLE001 - see the comment above
            self.last_error = f"{error.__class__.__name__}: {error}"
            logger.error(
                "model refresh failed, keeping %s: %s",
                self._model.version if self._model else "no model",
                self.last_error,
            )


def load_pointed_model(store: ModelStore, pointer: ModelPointer) -> ItemModel:
    """Load and verify the model a pointer names.

    Raises
    ------
    ModelIntegrityError
        When the manifest disagrees with the pointer, or the payload fails its checks.
    ModelNotFoundError
        When an object the pointer names is missing.
    """
    started = time.perf_counter()
    logger.info("loading model %s", pointer.version)
    manifest = parse_manifest(store.read_object(pointer.manifest_key))
    if manifest.version != pointer.version or manifest.sha256 != pointer.sha256:
        raise ModelIntegrityError("pointer and manifest disagree on version or sha256")
    model = load_model(store.read_object(pointer.payload_key), manifest)
    logger.info(
        "loaded model %s with %d items in %.3fs",
        model.version,
        model.n_items,
        time.perf_counter() - started,
    )
    return model


def load_published_model(store: ModelStore) -> ItemModel | None:
    """The model the pointer names, or None when nothing was ever published."""
    pointer = store.read_pointer()
    return None if pointer is None else load_pointed_model(store, pointer)


class RecommendationRequest(BaseModel):
    """What a caller may ask for: a list length and the filters (also for similar items)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int = Field(default=10, ge=1, le=MAX_K, description="How many items, 1 to 100.")
    exclude: tuple[Identifier, ...] = Field(
        default=(), max_length=MAX_FILTER_IDS, description="Item ids never to return."
    )
    include_categories: tuple[CategoryName, ...] = Field(
        default=(),
        max_length=MAX_CATEGORY_FILTERS,
        description="Only items in one of these categories.",
    )
    exclude_categories: tuple[CategoryName, ...] = Field(
        default=(),
        max_length=MAX_CATEGORY_FILTERS,
        description="No items in any of these categories.",
    )
    attributes: tuple[AttributeFilter, ...] = Field(
        default=(),
        max_length=MAX_ATTRIBUTE_FILTERS,
        description="Only items that have every one of these name:value attributes.",
    )

    def filters(self, availability: Availability | None, seen: frozenset[str]) -> Filters:
        """The scoring filters of this request, with the catalogue's edits and ``seen``."""
        edits = availability or Availability()
        return Filters(
            exclude_items=frozenset(self.exclude) | seen,
            include_categories=frozenset(self.include_categories),
            exclude_categories=frozenset(self.exclude_categories),
            unavailable_items=edits.hidden,
            available_items=edits.shown,
            required_attributes=frozenset(self.attributes),
        )


class RecommendedItem(BaseModel):
    item_id: str = Field(description="The item.")
    score: float = Field(
        description="Higher is better: the model score, popularity for 'popular', cosine "
        "similarity for 'similar'."
    )
    reason: str = Field(description="Why it is in the list: 'personalized', 'popular', 'similar'.")


class RecommendationResponse(BaseModel):
    """The list returned to the app."""

    user_id: str
    recommendation_id: str = Field(description="Unique id of this list, for attribution.")
    model_version: str
    source: str = Field(description="'personalized' or 'popular'.")
    items: list[RecommendedItem]
    last_sequence: str | None = Field(
        description="Stream position of the newest event reflected in this list."
    )
    unknown_filter_items: int = Field(description="Excluded ids the model does not know.")


@dataclass(frozen=True)
class ServingStats:
    refolded: bool
    history_events: int
    unknown_history_items: int


def recommend(
    *,
    user_id: str,
    request: RecommendationRequest,
    store: UserStateStore,
    model: ItemModel,
    availability: Availability | None = None,
) -> tuple[RecommendationResponse, ServingStats]:
    """A user's list: personalized from their vector, popular when they have no history.

    When the stored vector was folded against another model version, the vector is re-folded
    here from the stored history, so a list never mixes two latent bases. ``availability``
    carries the catalogue's edits since the model was built: hidden items never appear.
    """
    stored = store.get(user_id)
    state = stored.state if stored else None
    filters = request.filters(availability, state.seen_items if state else frozenset())
    vector, refolded, unknown = _user_vector(state, model)

    if vector is None:
        ranking, source = rank_by_popularity(model, filters, request.k), "popular"
    else:
        ranking, source = rank_for_vector(model, vector, filters, request.k), "personalized"

    response = RecommendationResponse(
        user_id=user_id,
        recommendation_id=str(uuid.uuid4()),
        model_version=model.version,
        source=source,
        items=[
            RecommendedItem(item_id=item.item_id, score=round(item.score, 6), reason=source)
            for item in ranking.items
        ],
        last_sequence=state.last_sequence if state else None,
        unknown_filter_items=ranking.unknown_filter_items,
    )
    stats = ServingStats(
        refolded=refolded,
        history_events=len(state.history) if state else 0,
        unknown_history_items=unknown,
    )
    return response, stats


def _user_vector(
    state: UserState | None, model: ItemModel
) -> tuple[NDArray[np.float32] | None, bool, int]:
    """The user's vector in ``model``'s basis, whether it was re-folded, and unknown items.

    None when the user has no history the model knows: then lists fall back to popularity.
    """
    if state is None or not state.history:
        return None, False, 0
    if state.vector is not None and state.model_version == model.version:
        return state.vector, False, 0
    folded = fold_history(model, state.history)
    vector = folded.vector if folded.items_used > 0 else None
    return vector, True, folded.unknown_items


class SimilarItemsResponse(BaseModel):
    """Items like one item, for "more like this"."""

    item_id: str = Field(description="The item the list is about.")
    recommendation_id: str = Field(description="Unique id of this list, for attribution.")
    model_version: str
    items: list[RecommendedItem]
    unknown_filter_items: int = Field(description="Excluded ids the model does not know.")


def similar_items(
    *,
    item_id: str,
    request: RecommendationRequest,
    model: ItemModel,
    availability: Availability | None = None,
) -> SimilarItemsResponse:
    """The items whose factors point the same way as ``item_id``'s, under the filters.

    Raises
    ------
    UnknownItemError
        If the model has no factors for ``item_id`` (new since the last training, or never
        seen in an event).
    """
    if item_id not in model.item_index:
        raise UnknownItemError(item_id)
    ranking = rank_similar(model, item_id, request.filters(availability, frozenset()), request.k)
    return SimilarItemsResponse(
        item_id=item_id,
        recommendation_id=str(uuid.uuid4()),
        model_version=model.version,
        items=[
            RecommendedItem(item_id=item.item_id, score=round(item.score, 6), reason=REASON_SIMILAR)
            for item in ranking.items
        ],
        unknown_filter_items=ranking.unknown_filter_items,
    )


class RankRequest(BaseModel):
    """The ids to put in order for the user."""

    model_config = ConfigDict(extra="forbid")

    item_ids: list[Identifier] = Field(
        min_length=1,
        max_length=MAX_RANK_ITEMS,
        description="1 to 500 distinct item ids, e.g. what a screen is about to show.",
    )

    @field_validator("item_ids")
    @classmethod
    def _distinct(cls, item_ids: list[str]) -> list[str]:
        if len(set(item_ids)) != len(item_ids):
            raise ValueError("must not repeat an id")
        return item_ids


class RankedItem(BaseModel):
    item_id: str = Field(description="One of the ids the caller sent.")
    score: float | None = Field(description="As in a recommendation; null for unknown items.")
    reason: str = Field(
        description="'personalized' or 'popular' (how it was scored), 'unavailable' (hidden "
        "in the catalogue: ranked after every available item) or 'unknown_item' (the model "
        "has no factors for it: ranked last, in the order sent)."
    )
    known: bool = Field(description="False when the model does not know the item.")


class RankResponse(BaseModel):
    """The caller's ids, best first for the user; nothing dropped."""

    user_id: str
    recommendation_id: str = Field(description="Unique id of this ranking, for attribution.")
    model_version: str
    source: str = Field(description="'personalized' or 'popular'.")
    items: list[RankedItem]
    last_sequence: str | None = Field(
        description="Stream position of the newest event reflected in this ranking."
    )


def rank_items(
    *,
    user_id: str,
    item_ids: Sequence[str],
    store: UserStateStore,
    model: ItemModel,
    availability: Availability | None = None,
) -> RankResponse:
    """Order ``item_ids`` for the user: available known items by score, then the rest.

    Known, available items come first, best score first; then known items the catalogue
    hides (by score); then ids the model does not know, in the order given. Ties keep the
    order given. Items the user has seen are ranked like any other: the caller chose them.
    """
    stored = store.get(user_id)
    state = stored.state if stored else None
    vector, _, _ = _user_vector(state, model)
    source = REASON_POPULAR if vector is None else REASON_PERSONALIZED

    # Scores of the known ids in one product: Y[rows] @ x_u, or their popularity.
    known_ids = [item_id for item_id in item_ids if item_id in model.item_index]
    rows = np.asarray([model.item_index[item_id] for item_id in known_ids], dtype=np.intp)
    scores = model.popularity[rows] if vector is None else model.item_factors[rows] @ vector
    score_of = {item_id: float(score) for item_id, score in zip(known_ids, scores, strict=True)}

    edits = availability or Availability()
    ranked: list[tuple[tuple[int, float, int], RankedItem]] = []
    for position, item_id in enumerate(item_ids):
        if item_id not in score_of:
            unknown = RankedItem(
                item_id=item_id, score=None, reason=REASON_UNKNOWN_ITEM, known=False
            )
            ranked.append(((2, 0.0, position), unknown))
            continue

        row, score = model.item_index[item_id], score_of[item_id]
        # A hide wins over the model's flag and over an earlier "show".
        shown = bool(model.available[row]) or item_id in edits.shown
        available = shown and item_id not in edits.hidden
        reason = source if available else REASON_UNAVAILABLE
        known = RankedItem(item_id=item_id, score=round(score, 6), reason=reason, known=True)
        ranked.append(((0 if available else 1, -score, position), known))
    ranked.sort(key=lambda entry: entry[0])

    return RankResponse(
        user_id=user_id,
        recommendation_id=str(uuid.uuid4()),
        model_version=model.version,
        source=source,
        items=[item for _, item in ranked],
        last_sequence=state.last_sequence if state else None,
    )


class HealthResponse(BaseModel):
    """The serving model, as this container sees it."""

    status: str = Field(description="'ok' when a model is serving.")
    model_version: str
    created_at: str = Field(description="When the model was trained, ISO 8601 UTC.")
    model_age_seconds: float = Field(description="Seconds since the model was trained.")


def model_health(model: ItemModel, now: datetime | None = None) -> HealthResponse:
    """The version and age of the serving model."""
    created_at = datetime.fromisoformat(model.manifest.created_at)
    age = ((now or datetime.now(UTC)) - created_at).total_seconds()
    return HealthResponse(
        status="ok",
        model_version=model.version,
        created_at=created_at.isoformat(),
        model_age_seconds=round(age, 3),
    )
