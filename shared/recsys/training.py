"""Nightly training: from the event history to a published item model.

Events become a user x item matrix of signed confidences (see :mod:`recsys.weights`), implicit
ALS factors it, and the item side is packed with popularity and catalogue metadata into an
:class:`~recsys.model.ItemModel`. Only this module imports ``implicit`` and ``scipy``; the
functions that serve never load it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix, csr_matrix
from threadpoolctl import threadpool_limits

from recsys.catalog import CatalogItem
from recsys.config import ALSConfig, ModelConfig, WeightConfig
from recsys.errors import TrainingError
from recsys.interactions import InteractionLog
from recsys.model import ItemModel, build_model
from recsys.weights import event_weights, signed_confidence

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingResult:
    """A trained model, its payload, and the user side that the nightly job discards.

    ``user_factors`` row ``u`` belongs to ``user_ids[u]``; the evaluation's "no update"
    baseline serves them as they are.
    """

    model: ItemModel
    payload: bytes
    user_ids: tuple[str, ...]
    user_factors: NDArray[np.float32]
    seconds: float


def confidence_matrix(
    log: InteractionLog, weights: WeightConfig, alpha: float, reference_ms: int
) -> csr_matrix:
    """The users x items matrix of signed confidences that ``implicit`` factors.

    Parameters
    ----------
    log
        The events; repeated (user, item) pairs are summed after decay.
    weights
        Event type weights and half-life.
    alpha
        Confidence scale: ``c = 1 + alpha * |w|``.
    reference_ms
        The time ages are measured from (the training cut-off).

    Returns
    -------
    csr_matrix, float32, shape (n_users, n_items)
        ``+c`` for a preferred pair, ``-c`` for a disliked one; pairs whose weights cancel
        out are absent, exactly like unobserved pairs.
    """
    event_weight = event_weights(
        log.event_types, log.values, log.timestamps_ms, reference_ms, weights
    )
    shape = (len(log.user_ids), len(log.item_ids))
    preference = coo_matrix((event_weight, (log.users, log.items)), shape=shape).tocsr()
    preference.sum_duplicates()
    preference.eliminate_zeros()

    preference.data = signed_confidence(preference.data, alpha)
    return preference.astype(np.float32)


def item_popularity(
    log: InteractionLog, weights: WeightConfig, reference_ms: int
) -> NDArray[np.float32]:
    """Decayed sum of positive event weights per item, scaled to a maximum of 1."""
    event_weight = event_weights(
        log.event_types, log.values, log.timestamps_ms, reference_ms, weights
    )
    popularity = np.bincount(
        log.items, weights=np.maximum(event_weight, 0.0), minlength=len(log.item_ids)
    )
    top = popularity.max(initial=0.0)
    return (popularity / top if top > 0 else popularity).astype(np.float32)


def fit_als(matrix: csr_matrix, als: ALSConfig) -> Any:
    """implicit's CPU ALS, fitted on a signed-confidence matrix; returns implicit's model.

    ``alpha`` is already folded into the matrix, so implicit's own alpha stays 1. The
    benchmarks time this call alone as the reference for :func:`train_model`.
    """
    from implicit.cpu.als import AlternatingLeastSquares

    # implicit runs its own threads; a multithreaded BLAS underneath them only contends (and
    # implicit warns about it when the model is created).
    with threadpool_limits(limits=1, user_api="blas"):
        model = AlternatingLeastSquares(
            factors=als.factors,
            regularization=als.regularization,
            alpha=1.0,
            iterations=als.iterations,
            random_state=als.seed,
            calculate_training_loss=False,
        )
        model.fit(matrix, show_progress=False)
    return model


def factorize(
    matrix: csr_matrix, als: ALSConfig
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """User factors (n_users, k) and item factors (n_items, k), float32, C-contiguous."""
    model = fit_als(matrix, als)
    return (
        np.ascontiguousarray(model.user_factors, dtype=np.float32),
        np.ascontiguousarray(model.item_factors, dtype=np.float32),
    )


def train_model(
    log: InteractionLog,
    catalog: Iterable[CatalogItem],
    config: ModelConfig,
    *,
    now: datetime | None = None,
    version: str | None = None,
    metrics: dict[str, float] | None = None,
) -> TrainingResult:
    """Train ALS on the log and package the item side as a model.

    Parameters
    ----------
    log
        Events to learn from (already deduplicated by event id).
    catalog
        Metadata for the filters; items without an entry have no categories and are
        available. Catalogue entries of items with no events are not part of the model.
    config
        Weights, decay and ALS parameters; stored in the manifest so fold-in uses the same.
    now
        Training time: ages are measured from it. By default ages are measured from the
        newest event, and the model is stamped with the current time.
    version
        Explicit model version; by default derived from ``now`` and the payload hash.

    Raises
    ------
    TrainingError
        If the log is empty.
    """
    if len(log) == 0:
        raise TrainingError("no events to train on")
    started = time.perf_counter()
    reference_ms = int(now.timestamp() * 1000) if now else int(log.timestamps_ms.max())
    # The model's age (health checks, versions) counts from when it was built, whatever the
    # age of the data it was built from.
    created_at = now or datetime.now(UTC)

    matrix = confidence_matrix(log, config.weights, config.als.alpha, reference_ms)
    logger.info("built confidence matrix %s with %d non-zeros", matrix.shape, matrix.nnz)

    user_factors, item_factors = factorize(matrix, config.als)
    logger.debug("factorized in %.3fs", time.perf_counter() - started)

    entries = {item.item_id: item for item in catalog}
    no_entry = CatalogItem(item_id="unknown")
    described = [entries.get(item_id, no_entry) for item_id in log.item_ids]
    model, payload = build_model(
        version=version,
        created_at=created_at,
        parameters=config,
        counts={
            "users": len(log.user_ids),
            "items": len(log.item_ids),
            "events": len(log),
            "nonzeros": int(matrix.nnz),
        },
        item_ids=log.item_ids,
        item_factors=item_factors,
        popularity=item_popularity(log, config.weights, reference_ms),
        available=np.array([item.available for item in described], dtype=np.bool_),
        item_categories=[item.categories for item in described],
        item_attributes=[item.attribute_pairs for item in described],
        metrics=metrics,
    )
    seconds = time.perf_counter() - started
    logger.info("trained model %s in %.2fs", model.version, seconds)
    return TrainingResult(
        model=model,
        payload=payload,
        user_ids=log.user_ids,
        user_factors=user_factors,
        seconds=seconds,
    )
