"""Fold-in: a user's vector as the exact ALS least-squares solution against fixed items.

With item factors ``Y`` (n x k) and a user's confidences ``Cu`` (diagonal, n x n) and
preferences ``p_u`` the user step of implicit ALS solves

    (YtY + Yt (Cu - I) Y + reg * I) x_u = Yt Cu p_u

Only the items in the user's history have ``Cu != I`` or ``p_u != 0``, so with the Gram
matrix ``YtY`` cached per model the cost is O(h k^2 + k^3) for a history of h items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from recsys.interactions import EVENT_TYPE_CODES
from recsys.model import ItemModel
from recsys.state import HistoryEntry
from recsys.weights import event_weights, signed_confidence


def fold_in(
    item_factors: NDArray[np.float32],
    YtY: NDArray[np.float64],
    item_indices: NDArray[np.intp],
    confidences: NDArray[np.float32],
    regularization: float,
) -> NDArray[np.float32]:
    """Solve the ALS user step for one user.

    Parameters
    ----------
    item_factors : NDArray[np.float32], shape (n_items, k)
        The model's item matrix ``Y``.
    YtY : NDArray[np.float64], shape (k, k)
        ``Y.T @ Y``, computed once per model.
    item_indices : NDArray[np.intp], shape (h,)
        Distinct rows of ``Y`` the user interacted with.
    confidences : NDArray[np.float32], shape (h,)
        Signed confidence per item (see :func:`recsys.weights.signed_confidence`): ``+c``
        for ``p = 1``, ``-c`` for ``p = 0``.
    regularization : float
        The L2 penalty the model was trained with.

    Returns
    -------
    NDArray[np.float32], shape (k,)
        The user's vector; zeros for an empty history.
    """
    k = item_factors.shape[1]
    if item_indices.size == 0:
        return np.zeros(k, dtype=np.float32)

    Yu = item_factors[item_indices].astype(np.float64)
    Cu = np.abs(confidences).astype(np.float64)
    pu = (confidences > 0).astype(np.float64)

    # A = YtY + Yt (Cu - I) Y + reg * I, touching only the user's h rows.
    A = YtY + (Yu.T * (Cu - 1.0)) @ Yu
    A[np.diag_indices_from(A)] += regularization

    # b = Yt Cu p_u
    b = Yu.T @ (Cu * pu)

    return np.linalg.solve(A, b).astype(np.float32)


def fold_in_reference(
    item_factors: NDArray[np.float32],
    item_indices: NDArray[np.intp],
    confidences: NDArray[np.float32],
    regularization: float,
) -> NDArray[np.float32]:
    """Slow, obviously correct fold-in over the full dense ``Cu``, for tests only.

    Builds ``Cu`` and ``p_u`` over every item and solves the normal equations as written in
    the paper. O(n k^2): never use it on a hot path.
    """
    n_items, k = item_factors.shape
    Y = item_factors.astype(np.float64)

    Cu = np.ones(n_items)
    pu = np.zeros(n_items)
    Cu[item_indices] = np.abs(confidences)
    pu[item_indices] = confidences > 0

    A = Y.T @ np.diag(Cu) @ Y + regularization * np.eye(k)
    b = Y.T @ np.diag(Cu) @ pu

    return np.linalg.solve(A, b).astype(np.float32)


@dataclass(frozen=True)
class FoldResult:
    """A folded vector and what the fold could not use."""

    vector: NDArray[np.float32]
    items_used: int
    unknown_items: int


def history_confidences(
    history: Sequence[HistoryEntry], model: ItemModel
) -> tuple[NDArray[np.intp], NDArray[np.float32], int]:
    """Aggregate a history into one signed confidence per known item.

    Weights decay from the newest event in the history, so the result depends only on the
    history, not on when it is computed. Items the model does not know (new since the last
    training) are skipped and counted; pairs whose weights cancel to zero are dropped.

    Returns
    -------
    tuple[NDArray[np.intp], NDArray[np.float32], int]
        Item rows (distinct), their signed confidences, and the number of unknown events.
    """
    item_index = model.item_index
    rows = np.fromiter(
        (item_index.get(entry.item_id, -1) for entry in history), dtype=np.intp, count=len(history)
    )
    known = rows >= 0
    unknown = int((~known).sum())
    if not known.any():
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float32), unknown

    kept = [entry for entry, is_known in zip(history, known, strict=True) if is_known]
    weights = event_weights(
        event_types=np.array([EVENT_TYPE_CODES[e.event_type] for e in kept], dtype=np.uint8),
        values=np.array([np.nan if e.value is None else e.value for e in kept], dtype=np.float32),
        timestamps_ms=np.array([e.timestamp_ms for e in kept], dtype=np.int64),
        reference_ms=max(e.timestamp_ms for e in kept),
        config=model.config.weights,
    )

    items, inverse = np.unique(rows[known], return_inverse=True)
    preference = np.bincount(inverse, weights=weights, minlength=items.size)
    nonzero = preference != 0.0
    confidences = signed_confidence(preference[nonzero], model.config.als.alpha)
    return items[nonzero], confidences, unknown


def fold_history(model: ItemModel, history: Sequence[HistoryEntry]) -> FoldResult:
    """A user's vector against ``model``, from the whole retained history."""
    items, confidences, unknown = history_confidences(history, model)
    vector = fold_in(
        model.item_factors, model.YtY, items, confidences, model.config.als.regularization
    )
    return FoldResult(vector=vector, items_used=int(items.size), unknown_items=unknown)
