"""Top-k with filters: checked against a full-sort reference and on hand-built cases."""

import numpy as np
import pytest

from recsys.scoring import (
    Filters,
    rank_by_popularity,
    rank_for_vector,
    rank_reference,
    rank_similar,
    top_k,
)
from tests.factories import make_model

CATEGORIES = [("drama",), ("comedy",), ("drama", "comedy"), (), ("horror",), ("comedy",)]


@pytest.fixture
def small_model():
    # Item i scores i + 1 against the vector [1]: i5 is best, i0 worst.
    factors = np.arange(1, 7, dtype=np.float32).reshape(-1, 1)
    model, _ = make_model(
        factors,
        popularity=np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.2]),
        available=np.array([True, True, True, True, True, False]),
        categories=CATEGORIES,
    )
    return model


def _ids(ranking):
    return [item.item_id for item in ranking.items]


def test_best_items_come_first_and_unavailable_items_never_appear(small_model):
    ranking = rank_for_vector(small_model, np.ones(1, np.float32), Filters(), 3)
    assert _ids(ranking) == ["i4", "i3", "i2"]
    assert [item.score for item in ranking.items] == [5.0, 4.0, 3.0]


def test_seen_and_explicitly_excluded_items_are_filtered(small_model):
    filters = Filters(exclude_items=frozenset({"i4", "i2"}))
    assert _ids(rank_for_vector(small_model, np.ones(1, np.float32), filters, 3)) == [
        "i3",
        "i1",
        "i0",
    ]


def test_unknown_excluded_ids_are_skipped_and_counted(small_model):
    filters = Filters(exclude_items=frozenset({"i4", "ghost-1", "ghost-2"}))
    ranking = rank_for_vector(small_model, np.ones(1, np.float32), filters, 1)
    assert _ids(ranking) == ["i3"]
    assert ranking.unknown_filter_items == 2


def test_category_include_keeps_items_in_any_listed_category(small_model):
    filters = Filters(include_categories=frozenset({"drama", "horror"}))
    assert _ids(rank_for_vector(small_model, np.ones(1, np.float32), filters, 10)) == [
        "i4",
        "i2",
        "i0",
    ]


def test_category_exclude_removes_items_in_any_listed_category(small_model):
    filters = Filters(exclude_categories=frozenset({"comedy"}))
    assert _ids(rank_for_vector(small_model, np.ones(1, np.float32), filters, 10)) == [
        "i4",
        "i3",
        "i0",
    ]


def test_unavailable_overlay_hides_items_the_model_thinks_available(small_model):
    filters = Filters(unavailable_items=frozenset({"i4"}))
    assert _ids(rank_for_vector(small_model, np.ones(1, np.float32), filters, 1)) == ["i3"]


def test_k_larger_than_the_eligible_items_returns_all_of_them(small_model):
    filters = Filters(include_categories=frozenset({"comedy"}))
    assert _ids(rank_for_vector(small_model, np.ones(1, np.float32), filters, 50)) == ["i2", "i1"]


def test_no_eligible_items_gives_an_empty_list(small_model):
    filters = Filters(include_categories=frozenset({"no-such-category"}))
    assert _ids(rank_for_vector(small_model, np.ones(1, np.float32), filters, 5)) == []


def test_popularity_ranking_uses_the_same_filters(small_model):
    filters = Filters(exclude_items=frozenset({"i0"}))
    assert _ids(rank_by_popularity(small_model, filters, 3)) == ["i3", "i2", "i4"]


def test_ties_break_by_item_row_whatever_the_partition_does():
    # GIVEN many items with identical scores around the k-th place
    scores = np.array([1, 3, 3, 3, 3, 3, 0, 3, 2], dtype=np.float32)
    mask = np.ones(scores.size, dtype=bool)

    # WHEN the top 4 are asked for
    rows = top_k(scores, mask, 4)

    # THEN the lowest rows among the tied scores win, in row order
    assert rows.tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize("seed", range(5))
def test_top_k_agrees_with_a_full_sort_reference(seed):
    # GIVEN a random model with rounded scores (many ties), categories and availability
    rng = np.random.default_rng(seed)
    n_items = 300
    factors = np.round(rng.normal(size=(n_items, 4)), 1)
    categories = [
        tuple(rng.choice(["a", "b", "c", "d"], size=rng.integers(0, 3), replace=False))
        for _ in range(n_items)
    ]
    attributes = [
        tuple(sorted(rng.choice(["brand:x", "brand:y", "size:big"], size=rng.integers(0, 3))))
        for _ in range(n_items)
    ]
    model, _ = make_model(
        factors,
        categories=categories,
        available=rng.random(n_items) > 0.1,
        attributes=[tuple(dict.fromkeys(pairs)) for pairs in attributes],
    )
    vector = np.round(rng.normal(size=4), 1).astype(np.float32)
    filters = Filters(
        exclude_items=frozenset(f"i{row}" for row in rng.choice(n_items, 40)),
        include_categories=frozenset({"a", "b"}),
        exclude_categories=frozenset({"d"}),
        unavailable_items=frozenset(f"i{row}" for row in rng.choice(n_items, 10)),
        available_items=frozenset(f"i{row}" for row in rng.choice(n_items, 10)),
        required_attributes=frozenset({"brand:x"} if seed % 2 else set()),
    )

    # WHEN ranked fast and by the reference
    fast = _ids(rank_for_vector(model, vector, filters, 25))
    slow = rank_reference(model, model.item_factors @ vector, filters, 25)

    # THEN the lists are identical
    assert fast == slow


def test_vector_of_the_wrong_dimension_is_refused(small_model):
    with pytest.raises(ValueError, match="shape"):
        rank_for_vector(small_model, np.ones(3, np.float32), Filters(), 3)


def test_attribute_filter_keeps_items_with_every_given_attribute():
    # GIVEN items with brand and size attributes
    factors = np.arange(1, 5, dtype=np.float32).reshape(-1, 1)
    attributes = [("brand:x", "size:big"), ("brand:x",), ("size:big",), ()]
    model, _ = make_model(factors, attributes=attributes)

    # WHEN a list is asked for with both attributes required
    filters = Filters(required_attributes=frozenset({"brand:x", "size:big"}))
    ranking = rank_for_vector(model, np.ones(1, np.float32), filters, 4)

    # THEN only the item with both remains
    assert _ids(ranking) == ["i0"]


def test_available_overlay_revives_an_item_the_model_built_hidden(small_model):
    # GIVEN i5, best scored but built unavailable, made available since
    filters = Filters(available_items=frozenset({"i5"}))

    # WHEN the list is ranked
    ranking = rank_for_vector(small_model, np.ones(1, np.float32), filters, 2)

    # THEN it is back at the top
    assert _ids(ranking) == ["i5", "i4"]


def test_hiding_wins_over_showing(small_model):
    # GIVEN an item both hidden and shown (shown earlier, hidden later)
    filters = Filters(available_items=frozenset({"i4"}), unavailable_items=frozenset({"i4"}))

    # WHEN the list is ranked
    ranking = rank_for_vector(small_model, np.ones(1, np.float32), filters, 1)

    # THEN it stays hidden
    assert _ids(ranking) == ["i3"]


def test_similar_items_rank_by_cosine_and_leave_out_the_item():
    # GIVEN i0 along x; i1 close to it but long; i2 at 45 degrees; i3 along y; i4 all zero
    factors = np.array([[1, 0], [10, 1], [1, 1], [0, 1], [0, 0]], dtype=np.float32)
    model, _ = make_model(factors)

    # WHEN the items similar to i0 are asked for
    ranking = rank_similar(model, "i0", Filters(), 4)

    # THEN they come by angle, not length; the zero item scores 0 and i0 is absent
    assert _ids(ranking) == ["i1", "i2", "i3", "i4"]
    assert [round(item.score, 3) for item in ranking.items] == [0.995, 0.707, 0.0, 0.0]


def test_similar_items_of_an_unknown_item_raise_key_error(small_model):
    with pytest.raises(KeyError):
        rank_similar(small_model, "ghost", Filters(), 3)
