"""Tests of the ranking metrics, against values worked out by hand in the comments."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np
import pytest

from recsys.metrics import (
    RankingAccumulator,
    average_precision_at_k,
    catalog_coverage,
    hit_at_k,
    mean_average_precision_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
)

# Shared example: hits at ranks 1 and 3; "x" is relevant but never recommended.
RECOMMENDED = ["a", "b", "c", "d", "e"]
RELEVANT = {"a", "c", "x"}

AtK = Callable[[Sequence[str], Collection[str], int], float]
AT_K_METRICS: list[AtK] = [
    precision_at_k,
    recall_at_k,
    average_precision_at_k,
    ndcg_at_k,
    hit_at_k,
]


# --------------------------------------------------------------------------------------
# Precision and recall
# --------------------------------------------------------------------------------------


def test_precision_counts_hits_in_the_first_k() -> None:
    # GIVEN hits at ranks 1 and 3
    # WHEN precision@3 is computed
    # THEN it is 2 hits / 3 slots
    assert precision_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx(2 / 3)


def test_precision_divides_by_k_when_the_list_is_shorter() -> None:
    # GIVEN a one-item list whose item is relevant
    # WHEN precision@5 is computed
    # THEN it is 1 hit / 5 slots = 0.2, not 1 / 1
    assert precision_at_k(["a"], {"a"}, 5) == pytest.approx(0.2)


def test_precision_counts_a_repeated_item_once() -> None:
    # GIVEN a relevant item listed twice
    # WHEN precision@3 is computed
    # THEN it earns one hit: 1 / 3
    assert precision_at_k(["a", "a", "b"], {"a"}, 3) == pytest.approx(1 / 3)


def test_recall_divides_by_the_number_of_relevant_items() -> None:
    # GIVEN 3 relevant items, 2 of them at ranks 1 and 3
    # WHEN recall@5 is computed
    # THEN it is 2 found / 3 relevant
    assert recall_at_k(RECOMMENDED, RELEVANT, 5) == pytest.approx(2 / 3)


def test_recall_ignores_hits_below_k() -> None:
    # GIVEN hits at ranks 1 and 3
    # WHEN recall@2 is computed
    # THEN only rank 1 counts: 1 / 3
    assert recall_at_k(RECOMMENDED, RELEVANT, 2) == pytest.approx(1 / 3)


# --------------------------------------------------------------------------------------
# Average precision
# --------------------------------------------------------------------------------------


def test_average_precision_averages_precision_at_each_hit() -> None:
    # GIVEN hits at ranks 1 and 3, and 3 relevant items
    # WHEN AP@5 is computed
    # THEN precision@1 = 1/1 and precision@3 = 2/3, over min(3, 5) = 3:
    #      (1 + 2/3) / 3 = 5/9
    assert average_precision_at_k(RECOMMENDED, RELEVANT, 5) == pytest.approx(5 / 9)


def test_average_precision_denominator_is_capped_at_k() -> None:
    # GIVEN 3 relevant items and a hit at rank 1 only within k = 2
    # WHEN AP@2 is computed
    # THEN precision@1 = 1 over min(3, 2) = 2: 1 / 2
    assert average_precision_at_k(RECOMMENDED, RELEVANT, 2) == pytest.approx(0.5)


def test_average_precision_of_a_full_list_of_hits_is_one() -> None:
    # GIVEN more relevant items (3) than slots (2), and both slots hits
    # WHEN AP@2 is computed
    # THEN (1/1 + 2/2) / min(3, 2) = 2 / 2 = 1
    assert average_precision_at_k(["a", "b"], {"a", "b", "c"}, 2) == pytest.approx(1.0)


def test_mean_average_precision_averages_over_users() -> None:
    # GIVEN user 1 with AP@5 = 5/9 (above) and user 2 with one hit at rank 2 of one
    # relevant item: AP = (1/2) / min(1, 5) = 1/2
    lists = [RECOMMENDED, ["z", "a"]]
    relevants = [RELEVANT, {"a"}]

    # WHEN MAP@5 is computed
    # THEN it is (5/9 + 1/2) / 2 = (10/18 + 9/18) / 2 = 19/36
    assert mean_average_precision_at_k(lists, relevants, 5) == pytest.approx(19 / 36)


def test_mean_average_precision_rejects_unpaired_inputs() -> None:
    # GIVEN two lists but one relevant set
    # WHEN / THEN MAP refuses
    with pytest.raises(ValueError):
        mean_average_precision_at_k([["a"], ["b"]], [{"a"}], 5)


def test_mean_average_precision_rejects_no_users() -> None:
    # GIVEN no lists at all
    # WHEN / THEN MAP refuses, the mean of nothing being undefined
    with pytest.raises(ValueError, match="no lists"):
        mean_average_precision_at_k([], [], 5)


# --------------------------------------------------------------------------------------
# NDCG
# --------------------------------------------------------------------------------------


def test_ndcg_discounts_by_log2_of_rank_plus_one() -> None:
    # GIVEN hits at ranks 1 and 3, and 3 relevant items
    # DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5
    # IDCG (3 hits at ranks 1..3) = 1 + 1/log2(3) + 1/log2(4) = 1 + 0.63093 + 0.5 = 2.13093
    # WHEN NDCG@5 is computed
    # THEN it is 1.5 / 2.13093 = 0.70392
    assert ndcg_at_k(RECOMMENDED, RELEVANT, 5) == pytest.approx(0.70392, abs=1e-5)


def test_ndcg_ideal_holds_at_most_k_hits() -> None:
    # GIVEN 3 relevant items and both of 2 slots hits
    # DCG = 1 + 1/log2(3); IDCG from min(3, 2) = 2 hits is the same
    # WHEN NDCG@2 is computed
    # THEN it is 1
    assert ndcg_at_k(["a", "b"], {"a", "b", "c"}, 2) == pytest.approx(1.0)


def test_ndcg_of_a_single_hit_at_rank_two() -> None:
    # GIVEN one relevant item, found at rank 2
    # DCG = 1/log2(3) = 0.63093; IDCG = 1/log2(2) = 1
    # WHEN NDCG@3 is computed
    # THEN it is 0.63093
    assert ndcg_at_k(["b", "a", "c"], {"a"}, 3) == pytest.approx(0.63093, abs=1e-5)


def _reference_ndcg(recommended: list[str], relevant: set[str], k: int) -> float:
    """Textbook NDCG: gains vector, discount vector, ideal ranking built explicitly."""
    top = recommended[:k]
    gains = np.array([1.0 if item in relevant else 0.0 for item in top])
    discounts = 1.0 / np.log2(np.arange(2, len(top) + 2))
    dcg = float(gains @ discounts)

    ideal_gains = np.zeros(k)
    ideal_gains[: len(relevant)] = 1.0
    ideal_dcg = float(ideal_gains @ (1.0 / np.log2(np.arange(2, k + 2))))
    return dcg / ideal_dcg if ideal_dcg > 0 else 0.0


def test_ndcg_agrees_with_a_reference_implementation_on_random_lists() -> None:
    # GIVEN 500 random lists without repeats, relevant sets and cut-offs (seeded)
    rng = np.random.default_rng(20240101)
    universe = [f"item{number}" for number in range(60)]
    cases = []
    for _ in range(500):
        recommended = list(rng.choice(universe, size=int(rng.integers(0, 25)), replace=False))
        relevant = set(rng.choice(universe, size=int(rng.integers(0, 15)), replace=False))
        cases.append((recommended, relevant, int(rng.integers(1, 30))))

    # WHEN / THEN both implementations give the same score on every case
    for recommended, relevant, k in cases:
        expected = _reference_ndcg(recommended, relevant, k)
        assert ndcg_at_k(recommended, relevant, k) == pytest.approx(expected)


# --------------------------------------------------------------------------------------
# Hit, reciprocal rank, coverage
# --------------------------------------------------------------------------------------


def test_hit_is_zero_when_the_relevant_item_is_below_k() -> None:
    # GIVEN the only relevant item at rank 2
    # WHEN / THEN hit@1 is 0.0
    assert hit_at_k(["b", "a"], {"a"}, 1) == 0.0


def test_hit_is_one_when_the_relevant_item_is_within_k() -> None:
    # GIVEN the only relevant item at rank 2
    # WHEN / THEN hit@2 is 1.0
    assert hit_at_k(["b", "a"], {"a"}, 2) == 1.0


def test_reciprocal_rank_uses_the_first_relevant_item() -> None:
    # GIVEN relevant items at ranks 3 and 4
    # WHEN / THEN the reciprocal rank is 1 / 3
    assert reciprocal_rank(["b", "c", "a", "d"], {"a", "d"}) == pytest.approx(1 / 3)


def test_reciprocal_rank_is_zero_without_a_relevant_item() -> None:
    # GIVEN no relevant item in the list
    # WHEN / THEN the reciprocal rank is 0.0
    assert reciprocal_rank(["b", "c"], {"a"}) == 0.0


def test_catalog_coverage_counts_distinct_items() -> None:
    # GIVEN lists {a, b} and {b, c}: 3 distinct items, out of 10
    # WHEN / THEN coverage is 3 / 10
    assert catalog_coverage([["a", "b"], ["b", "c"]], 10) == pytest.approx(0.3)


def test_catalog_coverage_rejects_an_empty_catalog() -> None:
    # GIVEN a catalogue of size 0
    # WHEN / THEN coverage refuses
    with pytest.raises(ValueError, match="catalog_size"):
        catalog_coverage([["a"]], 0)


# --------------------------------------------------------------------------------------
# Edge cases shared by the @k metrics
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", AT_K_METRICS, ids=lambda metric: metric.__name__)
def test_empty_relevant_set_scores_zero(metric: AtK) -> None:
    # GIVEN no relevant item at all
    # WHEN / THEN every @k metric scores 0.0
    assert metric(RECOMMENDED, set(), 5) == 0.0


@pytest.mark.parametrize("k", [0, -1])
@pytest.mark.parametrize("metric", AT_K_METRICS, ids=lambda metric: metric.__name__)
def test_non_positive_k_is_rejected(metric: AtK, k: int) -> None:
    # GIVEN a cut-off that is not positive
    # WHEN / THEN the metric refuses
    with pytest.raises(ValueError, match="k must be positive"):
        metric(RECOMMENDED, RELEVANT, k)


# --------------------------------------------------------------------------------------
# Accumulator for prequential replay
# --------------------------------------------------------------------------------------


def test_accumulator_summarises_hits_ndcg_mrr_and_coverage() -> None:
    # GIVEN k = 2 and three replayed events:
    #   target b at rank 2: hit, NDCG = 1/log2(3) = 0.63093, RR = 1/2
    #   target a at rank 3: miss at k = 2, NDCG = 0, RR over the whole list = 1/3
    #   target z absent:    miss, NDCG = 0, RR = 0
    accumulator = RankingAccumulator(k=2)
    accumulator.add(["a", "b", "c"], "b")
    accumulator.add(["c", "d", "a"], "a")
    accumulator.add(["a", "c"], "z")

    # WHEN summarised against a catalogue of 10 items
    summary = accumulator.summary(catalog_size=10)

    # THEN hit rate = 1/3, NDCG = 0.63093 / 3 = 0.21031, MRR = (1/2 + 1/3) / 3 = 5/18,
    # coverage = distinct top-2 items {a, b, c, d} = 4 / 10, events = 3
    assert summary == {
        "hit_rate": pytest.approx(1 / 3),
        "ndcg": pytest.approx(0.21031, abs=1e-5),
        "mrr": pytest.approx(5 / 18),
        "coverage": pytest.approx(0.4),
        "events": 3.0,
    }


def test_accumulator_without_events_reports_zeros() -> None:
    # GIVEN an accumulator that saw nothing
    accumulator = RankingAccumulator(k=5)

    # WHEN summarised
    summary = accumulator.summary(catalog_size=10)

    # THEN every figure is zero
    assert summary == {"hit_rate": 0.0, "ndcg": 0.0, "mrr": 0.0, "coverage": 0.0, "events": 0.0}


def test_accumulator_rejects_non_positive_k() -> None:
    # GIVEN / WHEN / THEN an accumulator cannot be built with k = 0
    with pytest.raises(ValueError, match="k must be positive"):
        RankingAccumulator(k=0)
