"""Nightly training: confidences by hand, and a checkerboard whose held-back diagonal wins."""

import numpy as np
import pytest

from recsys.config import ALSConfig, HistoryLimits, ModelConfig, WeightConfig
from recsys.errors import TrainingError
from recsys.events import EventType
from recsys.foldin import fold_history
from recsys.interactions import InteractionLog
from recsys.scoring import Filters, rank_for_vector
from recsys.state import merge_history
from recsys.training import confidence_matrix, item_popularity, train_model
from tests.factories import make_event

DAY_MINUTES = 24 * 60
WEIGHTS = WeightConfig(half_life_days=10.0)


def test_confidence_sums_decayed_weights_per_pair_and_signs_dislikes():
    # GIVEN u1 viewed i1 ten days before the cut-off and clicked it at the cut-off,
    # u1 disliked i2, and u2 viewed then disliked i3 (weights 1 and -4)
    log = InteractionLog.from_events(
        [
            make_event("a", user_id="u1", item_id="i1", minutes=0),
            make_event(
                "b",
                user_id="u1",
                item_id="i1",
                event_type=EventType.CLICK,
                minutes=10 * DAY_MINUTES,
            ),
            make_event(
                "c",
                user_id="u1",
                item_id="i2",
                event_type=EventType.DISLIKE,
                minutes=10 * DAY_MINUTES,
            ),
            make_event(
                "d", user_id="u2", item_id="i3", event_type=EventType.VIEW, minutes=10 * DAY_MINUTES
            ),
            make_event(
                "e",
                user_id="u2",
                item_id="i3",
                event_type=EventType.DISLIKE,
                minutes=10 * DAY_MINUTES,
            ),
        ]
    )
    cutoff_ms = log.timestamps_ms.max()

    # WHEN the matrix is built with alpha = 2
    matrix = confidence_matrix(log, WEIGHTS, alpha=2.0, reference_ms=int(cutoff_ms)).toarray()

    # THEN u1,i1: w = 1 * 0.5 (one half-life old) + 2 = 2.5, c = 1 + 2 * 2.5 = 6
    assert matrix[0, 0] == pytest.approx(6.0)
    # u1,i2: w = -4, c = 1 + 2 * 4 = 9, stored negative (p = 0)
    assert matrix[0, 1] == pytest.approx(-9.0)
    # u2,i3: w = 1 - 4 = -3, c = 7, negative
    assert matrix[1, 2] == pytest.approx(-7.0)


def test_pairs_whose_weights_cancel_out_are_left_unobserved():
    weights = WeightConfig(type_weights={**WEIGHTS.type_weights, EventType.DISLIKE: -1.0})
    log = InteractionLog.from_events(
        [
            make_event("a", item_id="i1", event_type=EventType.VIEW),
            make_event("b", item_id="i1", event_type=EventType.DISLIKE),
        ]
    )
    matrix = confidence_matrix(log, weights, alpha=2.0, reference_ms=int(log.timestamps_ms.max()))
    assert matrix.nnz == 0


def test_rating_weight_scales_with_the_rating_value():
    # rating weight 1, scale 3: a 5-star rating weighs 5/3, c = 1 + 3 * 5/3 = 6
    log = InteractionLog.from_events([make_event("a", event_type=EventType.RATING, value=5.0)])
    matrix = confidence_matrix(log, WEIGHTS, alpha=3.0, reference_ms=int(log.timestamps_ms[0]))
    assert matrix[0, 0] == pytest.approx(6.0)


def test_repeated_event_ids_count_once():
    event = make_event("same", event_type=EventType.PURCHASE)
    log = InteractionLog.from_events([event, event, event])
    assert len(log) == 1


def test_popularity_sums_positive_decayed_weights_scaled_to_one():
    # i1: two views now (2); i2: one view a half-life ago (0.5) and a dislike (ignored)
    log = InteractionLog.from_events(
        [
            make_event("a", item_id="i1", minutes=10 * DAY_MINUTES),
            make_event("b", user_id="u2", item_id="i1", minutes=10 * DAY_MINUTES),
            make_event("c", item_id="i2", minutes=0),
            make_event(
                "d",
                user_id="u3",
                item_id="i2",
                event_type=EventType.DISLIKE,
                minutes=10 * DAY_MINUTES,
            ),
        ]
    )
    popularity = item_popularity(log, WEIGHTS, reference_ms=int(log.timestamps_ms.max()))
    assert popularity.tolist() == pytest.approx([1.0, 0.25])


def test_empty_log_is_a_training_error():
    with pytest.raises(TrainingError, match="no events"):
        train_model(InteractionLog.from_events([]), [], ModelConfig())


@pytest.fixture(scope="module")
def checkerboard():
    """Users like the items of their own parity; the diagonal pair (u, u) is held back."""
    size = 40
    events = [
        make_event(f"e{user}-{item}", user_id=f"u{user}", item_id=f"i{item}", minutes=user + item)
        for user in range(size)
        for item in range(size)
        if (user + item) % 2 == 0 and user != item
    ]
    # Two parity classes need two factors; more would let ALS memorise the held-back zeros.
    config = ModelConfig(als=ALSConfig(factors=2, regularization=0.1, alpha=2.0, iterations=15))
    return size, events, train_model(InteractionLog.from_events(events), [], config)


def test_checkerboard_held_back_diagonal_ranks_first_for_trained_users(checkerboard):
    size, events, trained = checkerboard
    model = trained.model
    for row, user_id in enumerate(trained.user_ids):
        user = int(user_id[1:])
        seen = frozenset(e.item_id for e in events if e.user_id == user_id)
        ranking = rank_for_vector(model, trained.user_factors[row], Filters(exclude_items=seen), 1)
        assert ranking.items[0].item_id == f"i{user}"


def test_checkerboard_held_back_diagonal_ranks_first_after_fold_in(checkerboard):
    size, events, trained = checkerboard
    model = trained.model
    for user in range(size):
        history, _ = merge_history(
            (), [e for e in events if e.user_id == f"u{user}"], HistoryLimits()
        )
        vector = fold_history(model, history).vector
        seen = frozenset(entry.item_id for entry in history)
        ranking = rank_for_vector(model, vector, Filters(exclude_items=seen), 1)
        assert ranking.items[0].item_id == f"i{user}"


def test_trained_artifact_reloads_and_keeps_the_parameters(checkerboard):
    _, _, trained = checkerboard
    manifest = trained.model.manifest
    assert manifest.parameters.als.factors == 2
    assert manifest.counts["events"] == 40 * 40 // 2 - 40  # even-parity pairs minus the diagonal
    assert trained.model.item_factors.dtype == np.float32
    assert trained.model.item_factors.shape == (40, 2)
