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
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from recsys.errors import ModelIntegrityError, ModelNotFoundError
from recsys.events import Identifier
from recsys.foldin import fold_history
from recsys.model import ItemModel, load_model, parse_manifest
from recsys.ports import ModelPointer, ModelStore, UserStateStore
from recsys.scoring import Filters, rank_by_popularity, rank_for_vector

logger = logging.getLogger(__name__)

MAX_K = 100
MAX_FILTER_IDS = 100

CategoryName = str


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
    """What a caller may ask for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int = Field(default=10, ge=1, le=MAX_K, description="How many items, 1 to 100.")
    exclude: tuple[Identifier, ...] = Field(
        default=(), max_length=MAX_FILTER_IDS, description="Item ids never to return."
    )
    include_categories: tuple[CategoryName, ...] = Field(
        default=(), max_length=32, description="Only items in one of these categories."
    )
    exclude_categories: tuple[CategoryName, ...] = Field(
        default=(), max_length=32, description="No items in any of these categories."
    )


class RecommendedItem(BaseModel):
    item_id: str = Field(description="The item.")
    score: float = Field(description="Model score; higher is better. Popularity for 'popular'.")
    reason: str = Field(description="'personalized' or 'popular'.")


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
) -> tuple[RecommendationResponse, ServingStats]:
    """A user's list: personalized from their vector, popular when they have no history.

    When the stored vector was folded against another model version, the vector is re-folded
    here from the stored history, so a list never mixes two latent bases.
    """
    stored = store.get(user_id)
    state = stored.state if stored else None
    filters = Filters(
        exclude_items=frozenset(request.exclude) | (state.seen_items if state else frozenset()),
        include_categories=frozenset(request.include_categories),
        exclude_categories=frozenset(request.exclude_categories),
    )

    vector, refolded, unknown = None, False, 0
    if state is not None and state.history:
        if state.vector is not None and state.model_version == model.version:
            vector = state.vector
        else:
            folded = fold_history(model, state.history)
            vector, refolded, unknown = folded.vector, True, folded.unknown_items
            if folded.items_used == 0:
                vector = None

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
