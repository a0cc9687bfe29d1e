"""Fold-in must solve exactly the ALS user step: checked against implicit and a dense solver."""

import numpy as np
import pytest
from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix
from threadpoolctl import threadpool_limits

from recsys.foldin import fold_in, fold_in_reference

N_USERS, N_ITEMS, FACTORS, REGULARIZATION = 60, 400, 24, 0.3


@pytest.fixture(scope="module")
def trained_als() -> AlternatingLeastSquares:
    rng = np.random.default_rng(7)
    observed = rng.random((N_USERS, N_ITEMS)) < 0.06
    confidences = np.where(observed, 1.0 + 4.0 * rng.random((N_USERS, N_ITEMS)), 0.0)
    model = AlternatingLeastSquares(
        factors=FACTORS, regularization=REGULARIZATION, alpha=1.0, iterations=6, random_state=3
    )
    with threadpool_limits(limits=1, user_api="blas"):
        model.fit(csr_matrix(confidences.astype(np.float32)), show_progress=False)
    return model


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


def _random_history(seed: int, size: int, with_dislikes: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    items = rng.choice(N_ITEMS, size=size, replace=False)
    confidences = (1.0 + 9.0 * rng.random(size)).astype(np.float32)
    if with_dislikes:
        confidences[rng.random(size) < 0.3] *= -1.0
    return items, confidences


@pytest.mark.parametrize(
    "seed, size, with_dislikes", [(1, 1, False), (2, 25, False), (3, 80, True)]
)
def test_fold_in_matches_implicit_recalculate_user(trained_als, seed, size, with_dislikes):
    # GIVEN implicit's trained item factors and a user's signed confidences
    Y = trained_als.item_factors
    items, confidences = _random_history(seed, size, with_dislikes)
    row = np.zeros(N_ITEMS, dtype=np.float32)
    row[items] = confidences

    # WHEN both compute the user's vector
    expected = trained_als.recalculate_user(0, csr_matrix(row))
    actual = fold_in(Y, Y.astype(np.float64).T @ Y, items, confidences, REGULARIZATION)

    # THEN they agree to 1e-4 relative error
    assert actual.dtype == np.float32
    assert _relative_error(actual, expected) < 1e-4


def test_fold_in_matches_dense_reference_solver(trained_als):
    # GIVEN a history with likes and dislikes
    Y = trained_als.item_factors
    items, confidences = _random_history(11, 120, with_dislikes=True)

    # WHEN solved with the sparse update and with the dense normal equations
    fast = fold_in(Y, Y.astype(np.float64).T @ Y, items, confidences, REGULARIZATION)
    slow = fold_in_reference(Y, items, confidences, REGULARIZATION)

    # THEN the solutions agree
    assert _relative_error(fast, slow) < 1e-5


def test_fold_in_solution_zeroes_the_gradient_of_the_als_loss(trained_als):
    # GIVEN the ALS user objective
    #   L(x) = sum_i c_i (p_i - y_i.x)^2 + reg |x|^2, with c_i = 1 and p_i = 0 off-history
    Y = trained_als.item_factors.astype(np.float64)
    items, confidences = _random_history(5, 40, with_dislikes=True)
    c = np.ones(N_ITEMS)
    p = np.zeros(N_ITEMS)
    c[items] = np.abs(confidences)
    p[items] = confidences > 0

    # WHEN the fold-in vector is plugged into the gradient
    x = fold_in(trained_als.item_factors, Y.T @ Y, items, confidences, REGULARIZATION)
    gradient = -2 * Y.T @ (c * (p - Y @ x)) + 2 * REGULARIZATION * x

    # THEN the gradient vanishes (up to float32 rounding of the solution)
    assert np.linalg.norm(gradient) < 1e-3 * np.linalg.norm(2 * Y.T @ (c * p))


def test_empty_history_gives_the_zero_vector(trained_als):
    Y = trained_als.item_factors
    vector = fold_in(
        Y, Y.astype(np.float64).T @ Y, np.empty(0, np.intp), np.empty(0, np.float32), 0.1
    )
    assert vector.shape == (FACTORS,)
    assert not vector.any()
