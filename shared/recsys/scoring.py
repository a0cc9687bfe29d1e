"""Scoring and filtering: from a user vector (or nothing) to a ranked list of items.

Scores are ``Y @ x_u``. Filters turn ineligible items' scores to ``-inf``; the top k come from
a partial sort (``argpartition``, O(n)), and only those k are sorted. Ties break by item row,
so the same inputs always give the same list.

Similar items score by cosine similarity of item factors,
``cos(i, j) = y_i . y_j / (|y_i| |y_j|)``, with the item itself left out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from recsys.model import ItemModel


@dataclass(frozen=True)
class Filters:
    """What must not appear in a list.

    Attributes
    ----------
    exclude_items
        Item ids never to return: what the user has seen plus the caller's explicit excludes.
    include_categories
        When not empty, only items in at least one of these categories are eligible.
    exclude_categories
        Items in any of these categories are not eligible.
    unavailable_items
        Items hidden since the model was built (catalogue changes), on top of the model's own
        availability flags.
    available_items
        Items made available again since the model was built, although the model was built
        with them hidden. ``unavailable_items`` wins over it.
    required_attributes
        ``name:value`` attribute pairs an item must all have to be eligible.
    """

    exclude_items: frozenset[str] = frozenset()
    include_categories: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()
    unavailable_items: frozenset[str] = frozenset()
    available_items: frozenset[str] = frozenset()
    required_attributes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ScoredItem:
    item_id: str
    score: float


@dataclass(frozen=True)
class Ranking:
    """A ranked list, with the ids a filter named that the model does not know."""

    items: tuple[ScoredItem, ...]
    unknown_filter_items: int


def eligible_mask(model: ItemModel, filters: Filters) -> tuple[NDArray[np.bool_], int]:
    """Items that may be recommended under ``filters``.

    Returns
    -------
    tuple[NDArray[np.bool_], int]
        The mask, shape (n_items,), and how many excluded or unavailable ids were unknown to
        the model (skipped, not an error: the catalogue moves faster than the model).
    """
    mask = model.available.copy()
    revived, _ = _rows_of(model, filters.available_items)
    mask[revived] = True

    if filters.include_categories:
        included = np.zeros(model.n_items, dtype=np.bool_)
        for category in filters.include_categories:
            included |= model.category_mask(category)
        mask &= included
    for category in filters.exclude_categories:
        mask &= ~model.category_mask(category)
    for pair in filters.required_attributes:
        mask &= model.attribute_mask(pair)

    rows, unknown = _rows_of(model, filters.exclude_items | filters.unavailable_items)
    mask[rows] = False
    return mask, unknown


def top_k(scores: NDArray[np.float32], mask: NDArray[np.bool_], k: int) -> NDArray[np.intp]:
    """Rows of the k best eligible scores, best first, ties broken by lower row.

    Parameters
    ----------
    scores : NDArray[np.float32], shape (n,)
    mask : NDArray[np.bool_], shape (n,)
        Eligible rows.
    k : int
        How many to return; fewer when fewer rows are eligible.
    """
    eligible = np.flatnonzero(mask)
    if k <= 0 or eligible.size == 0:
        return np.empty(0, dtype=np.intp)
    eligible_scores = scores[eligible]
    if k >= eligible.size:
        candidates = np.arange(eligible.size)
    else:
        # argpartition splits ties at the k-th score arbitrarily; taking every candidate at
        # least as good as the k-th, then sorting only those, keeps the result deterministic.
        kth = np.argpartition(-eligible_scores, k - 1)[k - 1]
        candidates = np.flatnonzero(eligible_scores >= eligible_scores[kth])
    order = np.lexsort((eligible[candidates], -eligible_scores[candidates]))
    return eligible[candidates[order[:k]]]


def rank_for_vector(
    model: ItemModel, vector: NDArray[np.float32], filters: Filters, k: int
) -> Ranking:
    """The k best eligible items for a user vector, by ``Y @ x_u``."""
    if vector.shape != (model.manifest.factors,):
        raise ValueError(f"vector has shape {vector.shape}, model has {model.manifest.factors}")
    scores = model.item_factors @ vector
    return _rank(model, scores, filters, k)


def rank_by_popularity(model: ItemModel, filters: Filters, k: int) -> Ranking:
    """The k most popular eligible items, for users with no usable history."""
    return _rank(model, model.popularity, filters, k)


def rank_reference(
    model: ItemModel, scores: NDArray[np.float32], filters: Filters, k: int
) -> list[str]:
    """Slow, obviously correct ranking by a full sort in pure Python, for tests only."""
    excluded = filters.exclude_items | filters.unavailable_items
    rows = []
    for row, item_id in enumerate(model.item_ids):
        categories = set(model.categories_of(row))
        available = bool(model.available[row]) or item_id in filters.available_items
        if not available or item_id in excluded:
            continue
        if not filters.required_attributes <= set(model.attributes_of(row)):
            continue
        if filters.include_categories and not categories & filters.include_categories:
            continue
        if categories & filters.exclude_categories:
            continue
        rows.append(row)
    rows.sort(key=lambda row: (-float(scores[row]), row))
    return [model.item_ids[row] for row in rows[:k]]


def rank_similar(model: ItemModel, item_id: str, filters: Filters, k: int) -> Ranking:
    """The k eligible items closest to ``item_id`` by cosine similarity of their factors.

    The item itself is never in the list. An item whose factors are all zero is similar to
    nothing: every score is 0 and the ties break by row.

    Raises
    ------
    KeyError
        If the model does not know ``item_id``.
    """
    row = model.item_index[item_id]
    # cos(i, j) = (Y @ y_i)_j / (|y_j| |y_i|); a zero norm gives a zero score, not a NaN.
    denominators = model.item_norms * model.item_norms[row]
    dots = model.item_factors @ model.item_factors[row]
    scores = np.divide(dots, denominators, out=np.zeros_like(dots), where=denominators > 0).astype(
        np.float32
    )
    without_itself = replace(filters, exclude_items=filters.exclude_items | {item_id})
    return _rank(model, scores, without_itself, k)


def _rank(model: ItemModel, scores: NDArray[np.float32], filters: Filters, k: int) -> Ranking:
    mask, unknown = eligible_mask(model, filters)
    rows = top_k(scores, mask, k)
    items = tuple(ScoredItem(model.item_ids[row], float(scores[row])) for row in rows)
    return Ranking(items=items, unknown_filter_items=unknown)


def _rows_of(model: ItemModel, item_ids: frozenset[str]) -> tuple[NDArray[np.intp], int]:
    index = model.item_index
    rows = [index[item_id] for item_id in item_ids if item_id in index]
    unknown = sum(1 for item_id in item_ids if item_id not in index)
    return np.asarray(rows, dtype=np.intp), unknown
