"""Ranking metrics: how good one recommended list is, and aggregates over many.

Conventions shared by every function here:

- Relevance is binary: an item is relevant if it is in ``relevant``.
- ``k`` must be positive; ``k <= 0`` raises ``ValueError``.
- An item repeated in ``recommended`` earns credit only at its first position, so a list
  cannot score twice for one relevant item.
- An empty ``relevant`` set scores 0.0 everywhere: there is nothing to find, so nothing is
  found. Averages over users therefore count such users as zeros; leave them out upstream
  if that is not wanted.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence


def precision_at_k(recommended: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the first ``k`` slots that hold a relevant item.

    Parameters
    ----------
    recommended
        Items in ranked order, best first.
    relevant
        Items that count as hits.
    k
        Cut-off, positive.

    Returns
    -------
    float
        ``hits / k``, in [0, 1]. The denominator is ``k`` even when the list is shorter than
        ``k``: an empty slot is a missed chance, not a free pass.

    Raises
    ------
    ValueError
        If ``k <= 0``.
    """
    _check_k(k)
    return len(_hit_ranks(recommended, relevant, k)) / k


def recall_at_k(recommended: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant items found in the first ``k`` slots.

    Parameters
    ----------
    recommended
        Items in ranked order, best first.
    relevant
        Items that count as hits.
    k
        Cut-off, positive.

    Returns
    -------
    float
        ``hits / |relevant|``, in [0, 1]; 0.0 when ``relevant`` is empty. When
        ``|relevant| > k`` it cannot reach 1.

    Raises
    ------
    ValueError
        If ``k <= 0``.
    """
    _check_k(k)
    relevant_count = len(set(relevant))
    if relevant_count == 0:
        return 0.0
    return len(_hit_ranks(recommended, relevant, k)) / relevant_count


def average_precision_at_k(recommended: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Average precision at ``k`` (AP@k): precision at each hit, averaged.

    ``AP@k = sum(precision@i for each rank i <= k holding a hit) / min(|relevant|, k)``.
    The denominator is ``min(|relevant|, k)``, the most hits a list of ``k`` could hold, so
    a perfect list scores 1 even when there are more relevant items than slots.

    Parameters
    ----------
    recommended
        Items in ranked order, best first.
    relevant
        Items that count as hits.
    k
        Cut-off, positive.

    Returns
    -------
    float
        In [0, 1]; 0.0 when ``relevant`` is empty.

    Raises
    ------
    ValueError
        If ``k <= 0``.
    """
    _check_k(k)
    relevant_count = len(set(relevant))
    if relevant_count == 0:
        return 0.0

    # The n-th hit (counting from 1) at 1-based rank r adds precision@r = n / r.
    hit_ranks = _hit_ranks(recommended, relevant, k)
    precision_sum = sum(n / rank for n, rank in enumerate(hit_ranks, start=1))
    return precision_sum / min(relevant_count, k)


def mean_average_precision_at_k(
    lists: Iterable[Sequence[str]], relevants: Iterable[Collection[str]], k: int
) -> float:
    """Mean of :func:`average_precision_at_k` over paired lists and relevant sets (MAP@k).

    Parameters
    ----------
    lists
        One recommended list per user.
    relevants
        The relevant items of the same users, in the same order.
    k
        Cut-off, positive.

    Returns
    -------
    float
        In [0, 1].

    Raises
    ------
    ValueError
        If ``k <= 0``, if the two inputs differ in length, or if they are empty (the mean of
        nothing is undefined).
    """
    _check_k(k)
    scores = [
        average_precision_at_k(recommended, relevant, k)
        for recommended, relevant in zip(lists, relevants, strict=True)
    ]
    if not scores:
        raise ValueError("no lists to average")
    return sum(scores) / len(scores)


def ndcg_at_k(recommended: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Normalised discounted cumulative gain at ``k``, with binary relevance.

    ``DCG@k = sum(1 / log2(r + 1) for each 1-based rank r <= k holding a hit)``; the ideal
    DCG puts ``min(|relevant|, k)`` hits in the top ranks. NDCG is their ratio.

    Parameters
    ----------
    recommended
        Items in ranked order, best first.
    relevant
        Items that count as hits.
    k
        Cut-off, positive.

    Returns
    -------
    float
        In [0, 1]; 0.0 when ``relevant`` is empty.

    Raises
    ------
    ValueError
        If ``k <= 0``.
    """
    _check_k(k)
    relevant_count = len(set(relevant))
    if relevant_count == 0:
        return 0.0

    dcg = sum(1.0 / math.log2(rank + 1) for rank in _hit_ranks(recommended, relevant, k))
    ideal_dcg = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(relevant_count, k) + 1))
    return dcg / ideal_dcg


def hit_at_k(recommended: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1.0 if any of the first ``k`` items is relevant, else 0.0.

    Raises
    ------
    ValueError
        If ``k <= 0``.
    """
    _check_k(k)
    return 1.0 if _hit_ranks(recommended, relevant, k) else 0.0


def reciprocal_rank(recommended: Sequence[str], relevant: Collection[str]) -> float:
    """``1 / rank`` of the first relevant item (ranks from 1), over the whole list.

    Returns
    -------
    float
        In (0, 1], or 0.0 when no item of the list is relevant.
    """
    relevant_set = set(relevant)
    for rank, item in enumerate(recommended, start=1):
        if item in relevant_set:
            return 1.0 / rank
    return 0.0


def catalog_coverage(lists: Iterable[Sequence[str]], catalog_size: int) -> float:
    """Share of the catalogue that appears in at least one list.

    Parameters
    ----------
    lists
        Recommended lists, whole (cut them to ``k`` first if only the top ``k`` count).
    catalog_size
        Number of items that could have been recommended, positive.

    Returns
    -------
    float
        ``distinct recommended items / catalog_size``. The items are not checked against the
        catalogue, so lists naming unknown items can push it above 1.

    Raises
    ------
    ValueError
        If ``catalog_size <= 0``.
    """
    if catalog_size <= 0:
        raise ValueError("catalog_size must be positive")
    distinct: set[str] = set()
    for recommended in lists:
        distinct.update(recommended)
    return len(distinct) / catalog_size


class RankingAccumulator:
    """Running totals of a prequential replay, where each event has one target item.

    For every event, :meth:`add` scores the list the user was shown against the item they
    then acted on: hit@k, NDCG@k with that one relevant item, and reciprocal rank over the
    whole list. Coverage counts the distinct items among the first ``k`` of every list.

    Parameters
    ----------
    k
        Cut-off, positive.

    Raises
    ------
    ValueError
        If ``k <= 0``.
    """

    def __init__(self, k: int) -> None:
        _check_k(k)
        self.k = k
        self._events = 0
        self._hits = 0
        self._ndcg_sum = 0.0
        self._reciprocal_rank_sum = 0.0
        self._recommended: set[str] = set()

    def add(self, recommended: Sequence[str], target_item: str) -> None:
        """Score one list against the item the user acted on next."""
        top_k = recommended[: self.k]
        self._events += 1
        self._recommended.update(top_k)

        rank = _first_rank(recommended, target_item)
        if rank is None:
            return
        self._reciprocal_rank_sum += 1.0 / rank
        if rank <= self.k:
            # With one relevant item the ideal DCG is 1/log2(2) = 1, so NDCG is the gain.
            self._hits += 1
            self._ndcg_sum += 1.0 / math.log2(rank + 1)

    def summary(self, catalog_size: int) -> dict[str, float]:
        """Means over the events added so far, and catalogue coverage.

        Parameters
        ----------
        catalog_size
            Number of items that could have been recommended, positive.

        Returns
        -------
        dict[str, float]
            ``hit_rate``, ``ndcg`` and ``mrr`` (means over events, 0.0 before any event),
            ``coverage`` (distinct top-k items / ``catalog_size``) and ``events`` (count).

        Raises
        ------
        ValueError
            If ``catalog_size <= 0``.
        """
        if catalog_size <= 0:
            raise ValueError("catalog_size must be positive")
        events = self._events
        return {
            "hit_rate": self._hits / events if events else 0.0,
            "ndcg": self._ndcg_sum / events if events else 0.0,
            "mrr": self._reciprocal_rank_sum / events if events else 0.0,
            "coverage": len(self._recommended) / catalog_size,
            "events": float(events),
        }


def _check_k(k: int) -> None:
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")


def _hit_ranks(recommended: Sequence[str], relevant: Collection[str], k: int) -> list[int]:
    """1-based ranks within the first ``k`` where a relevant item first appears."""
    relevant_set = set(relevant)
    seen: set[str] = set()
    ranks = []
    for rank, item in enumerate(recommended[:k], start=1):
        if item in relevant_set and item not in seen:
            ranks.append(rank)
        seen.add(item)
    return ranks


def _first_rank(recommended: Sequence[str], item: str) -> int | None:
    for rank, candidate in enumerate(recommended, start=1):
        if candidate == item:
            return rank
    return None
