"""Prequential replay: how good are the lists users would actually have been shown?

Train on the first part of the timeline, then walk through the rest in time order. Before
each event, ask every variant for that user's top k (without what the user has already
seen) and record whether the event's item is in it; then apply the event. Variants:

- ``realtime``: the user's vector is folded in from the retained history after every event;
- ``no_update``: the same model's user factors from training, never updated;
- ``popularity``: the model's decayed popularity.

Users with no history at that moment get popularity in every variant.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from recsys.catalog import CatalogItem
from recsys.config import HistoryLimits, ModelConfig
from recsys.events import Event
from recsys.foldin import fold_history
from recsys.interactions import InteractionLog
from recsys.metrics import RankingAccumulator
from recsys.model import ItemModel
from recsys.scoring import Filters, rank_by_popularity, rank_for_vector
from recsys.state import HistoryEntry, merge_history
from recsys.training import TrainingResult, train_model

logger = logging.getLogger(__name__)

VARIANTS = ("realtime", "no_update", "popularity")


@dataclass
class ReplayReport:
    """Side-by-side metrics of one replay; ``as_dict`` is the shape of ``replay.json``."""

    dataset: str
    k: int
    events: int
    users: int
    train_events: int
    model_version: str
    variants: dict[str, dict[str, float]]
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "k": self.k,
            "events": self.events,
            "users": self.users,
            "train_events": self.train_events,
            "model_version": self.model_version,
            "variants": self.variants,
            "seconds": self.seconds,
        }


def split_by_time(
    events: Sequence[Event], train_fraction: float
) -> tuple[list[Event], list[Event]]:
    """Sort by (timestamp, event_id) and cut at ``train_fraction`` of the events."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError("train_fraction must be between 0 and 1")
    ordered = sorted(events, key=lambda e: (e.timestamp_ms, e.event_id))
    cut = int(len(ordered) * train_fraction)
    return ordered[:cut], ordered[cut:]


def prequential_replay(
    events: Sequence[Event],
    catalog: Iterable[CatalogItem],
    config: ModelConfig,
    *,
    k: int = 10,
    train_fraction: float = 0.8,
    dataset: str = "unnamed",
) -> ReplayReport:
    """Train on the first part of the events and replay the rest; see the module docstring.

    Events whose weight is not positive (a dislike) are applied but not scored: a list that
    contains the item a user is about to dislike has not succeeded.
    """
    started = time.perf_counter()
    train_events, test_events = split_by_time(events, train_fraction)
    trained = train_model(InteractionLog.from_events(train_events), catalog, config)
    model = trained.model
    trained_at = time.perf_counter()

    frozen_rows = {user_id: row for row, user_id in enumerate(trained.user_ids)}
    histories = _initial_histories(train_events, config.history)
    realtime_vectors: dict[str, NDArray[np.float32]] = {}
    scores = {variant: RankingAccumulator(k) for variant in VARIANTS}
    type_weights = config.weights.type_weights

    for event in test_events:
        history = histories.get(event.user_id, ())
        if type_weights[event.event_type] > 0:
            lists = _lists_before_event(
                model, event.user_id, history, realtime_vectors, trained, frozen_rows, k
            )
            for variant, items in lists.items():
                scores[variant].add(items, event.item_id)

        histories[event.user_id], _ = merge_history(history, [event], config.history)
        realtime_vectors.pop(event.user_id, None)

    replayed_at = time.perf_counter()
    return ReplayReport(
        dataset=dataset,
        k=k,
        events=len(test_events),
        users=len({e.user_id for e in test_events}),
        train_events=len(train_events),
        model_version=model.version,
        variants={v: scores[v].summary(model.n_items) for v in VARIANTS},
        seconds={
            "train": round(trained_at - started, 3),
            "replay": round(replayed_at - trained_at, 3),
        },
    )


def _initial_histories(
    train_events: Sequence[Event], limits: HistoryLimits
) -> dict[str, tuple[HistoryEntry, ...]]:
    per_user: dict[str, list[Event]] = {}
    for event in train_events:
        per_user.setdefault(event.user_id, []).append(event)
    return {user: merge_history((), evs, limits)[0] for user, evs in per_user.items()}


def _lists_before_event(
    model: ItemModel,
    user_id: str,
    history: tuple[HistoryEntry, ...],
    realtime_vectors: dict[str, NDArray[np.float32]],
    trained: TrainingResult,
    frozen_rows: dict[str, int],
    k: int,
) -> dict[str, list[str]]:
    filters = Filters(exclude_items=frozenset(entry.item_id for entry in history))
    popular = [item.item_id for item in rank_by_popularity(model, filters, k).items]
    if not history:
        return dict.fromkeys(VARIANTS, popular)

    vector = realtime_vectors.get(user_id)
    if vector is None:
        vector = realtime_vectors[user_id] = fold_history(model, history).vector
    realtime = [item.item_id for item in rank_for_vector(model, vector, filters, k).items]

    row = frozen_rows.get(user_id)
    if row is None:
        no_update = popular
    else:
        frozen = trained.user_factors[row]
        no_update = [item.item_id for item in rank_for_vector(model, frozen, filters, k).items]

    return {"realtime": realtime, "no_update": no_update, "popularity": popular}


def holdout_hit_rate(
    model: ItemModel,
    histories: dict[str, tuple[HistoryEntry, ...]],
    holdout_items: dict[str, frozenset[str]],
    k: int,
) -> float:
    """Share of users with at least one held-out item in their top k.

    Each user's vector is folded from their history before the holdout, exactly as
    ingestion would; what they have seen is excluded. Users without a history are skipped:
    popularity serves them whatever model is published.

    Parameters
    ----------
    model
        The model to judge.
    histories
        Each user's retained history before the holdout period.
    holdout_items
        Items each user went on to use during the holdout period.
    k
        List length.
    """
    hits, users = 0, 0
    for user_id, targets in holdout_items.items():
        history = histories.get(user_id)
        if not history:
            continue
        folded = fold_history(model, history)
        if folded.items_used == 0:
            continue
        seen = frozenset(entry.item_id for entry in history)
        ranking = rank_for_vector(model, folded.vector, Filters(exclude_items=seen), k)
        users += 1
        hits += any(item.item_id in targets for item in ranking.items)
    return hits / users if users else float("nan")
