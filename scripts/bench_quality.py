"""Quality: the prequential replay table, with ``implicit``'s own recommender beside it.

:func:`recsys.evaluation.prequential_replay` gives real-time, no update and popularity. The
fourth row asks ``implicit`` itself: an ALS fitted directly on the same training matrix,
with the same parameters, whose ``recommend`` (filtering what the user has seen) ranks from
the frozen user factors. It is the no-update variant without any of our serving code, so
the two should agree; a gap would point at our scoring or filtering.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from bench_common import Report
from bench_fixtures import replay_dataset
from bench_training import CONFIG, fit_implicit
from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix

from recsys.catalog import CatalogItem
from recsys.evaluation import prequential_replay, split_by_time
from recsys.events import Event
from recsys.interactions import InteractionLog
from recsys.metrics import RankingAccumulator
from recsys.model import ItemModel
from recsys.scoring import Filters, rank_by_popularity
from recsys.state import HistoryEntry, merge_history
from recsys.training import confidence_matrix, train_model

SECTION = "quality"
LIST_LENGTH = 10
TRAIN_FRACTION = 0.8
METRICS = {"hit_rate": "hit rate@10", "ndcg": "NDCG@10"}


def run(report: Report) -> None:
    """The replay table on MovieLens 100K (a small synthetic log in quick mode)."""
    chosen = replay_dataset(report, SECTION, "movielens-100k", quick_size=(300, 400, 6_000), seed=9)
    if chosen is None:
        return
    events, catalog, name = chosen

    print(f"replay of {name} ({len(events):,} events)", flush=True)
    replay = prequential_replay(
        events, catalog, CONFIG, k=LIST_LENGTH, train_fraction=TRAIN_FRACTION, dataset=name
    )
    variants = dict(replay.variants)
    variants["implicit_no_update"] = implicit_no_update(events, catalog)

    references = {"realtime": "no_update", "implicit_no_update": "no_update"}
    for variant, summary in variants.items():
        for metric, unit in METRICS.items():
            reference = references.get(variant)
            report.add(
                SECTION,
                f"{name}.{variant}.{metric}",
                summary[metric],
                unit,
                reference=variants[reference][metric] if reference else None,
            )


def implicit_no_update(events: Sequence[Event], catalog: list[CatalogItem]) -> dict[str, float]:
    """Replay the test period with ``implicit``'s own ``recommend`` on frozen factors.

    Mirrors :func:`prequential_replay`: the same split, the same retained histories (the
    seen-item filter), only events with a positive weight scored, and popularity for users
    with no history or no training row.
    """
    train_events, test_events = split_by_time(events, TRAIN_FRACTION)
    log = InteractionLog.from_events(train_events)
    model = train_model(log, catalog, CONFIG).model
    matrix = confidence_matrix(log, CONFIG.weights, CONFIG.als.alpha, int(log.timestamps_ms.max()))
    als = fit_implicit(matrix, CONFIG.als)

    user_rows = {user_id: row for row, user_id in enumerate(log.user_ids)}
    item_rows = {item_id: row for row, item_id in enumerate(log.item_ids)}
    histories: dict[str, tuple[HistoryEntry, ...]] = {}
    for event in train_events:
        history = histories.get(event.user_id, ())
        histories[event.user_id], _ = merge_history(history, [event], CONFIG.history)

    scores = RankingAccumulator(LIST_LENGTH)
    type_weights = CONFIG.weights.type_weights
    for event in test_events:
        history = histories.get(event.user_id, ())
        if type_weights[event.event_type] > 0:
            row = user_rows.get(event.user_id)
            seen = frozenset(entry.item_id for entry in history)
            if history and row is not None:
                recommended = _implicit_list(als, row, seen, item_rows, log.item_ids)
            else:
                recommended = _popular_list(model, seen)
            scores.add(recommended, event.item_id)
        histories[event.user_id], _ = merge_history(history, [event], CONFIG.history)

    return scores.summary(model.n_items)


def _implicit_list(
    als: AlternatingLeastSquares,
    row: int,
    seen: frozenset[str],
    item_rows: dict[str, int],
    item_ids: tuple[str, ...],
) -> list[str]:
    seen_rows = sorted(item_rows[item] for item in seen if item in item_rows)
    user_items = csr_matrix(
        (np.ones(len(seen_rows), dtype=np.float32), ([0] * len(seen_rows), seen_rows)),
        shape=(1, len(item_ids)),
    )
    rows, _ = als.recommend(row, user_items, N=LIST_LENGTH, filter_already_liked_items=True)
    return [item_ids[item_row] for item_row in rows]


def _popular_list(model: ItemModel, seen: frozenset[str]) -> list[str]:
    ranking = rank_by_popularity(model, Filters(exclude_items=seen), LIST_LENGTH)
    return [item.item_id for item in ranking.items]
