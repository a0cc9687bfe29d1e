"""From events to weights: how strongly each event says "this user likes this item".

The weight of one event is its type's weight (a rating scaled by its value), halved for every
half-life of age. A user's preference for an item is the sum of those weights, and the
confidence of Hu, Koren and Volinsky (2008) is ``c = 1 + alpha * |w|`` with ``p = 1`` where
``w > 0`` and ``p = 0`` where ``w < 0`` (an explicit dislike is a confident zero).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from recsys.config import WeightConfig
from recsys.events import EventType
from recsys.interactions import EVENT_TYPES

MS_PER_DAY = 86_400_000.0


def type_weight_table(config: WeightConfig) -> NDArray[np.float64]:
    """Weight of each event type, indexed by the codes of :data:`EVENT_TYPES`."""
    return np.array([config.type_weights[t] for t in EVENT_TYPES], dtype=np.float64)


def event_weights(
    event_types: NDArray[np.uint8],
    values: NDArray[np.float32],
    timestamps_ms: NDArray[np.int64],
    reference_ms: int,
    config: WeightConfig,
) -> NDArray[np.float64]:
    """Decayed weight of each event.

    Parameters
    ----------
    event_types : NDArray[np.uint8], shape (n,)
        Codes into :data:`EVENT_TYPES`.
    values : NDArray[np.float32], shape (n,)
        Event values, NaN where absent; only ratings use them.
    timestamps_ms : NDArray[np.int64], shape (n,)
        Epoch milliseconds.
    reference_ms : int
        The moment ages are measured from; events after it count as age zero.
    config : WeightConfig
        Type weights, rating scale and half-life.

    Returns
    -------
    NDArray[np.float64], shape (n,)
        ``type_weight * rating_factor * 0.5 ** (age_days / half_life_days)``.
    """
    weights = type_weight_table(config)[event_types]

    rating_code = EVENT_TYPES.index(EventType.RATING)
    is_scaled_rating = (event_types == rating_code) & np.isfinite(values)
    rating_factor = np.where(is_scaled_rating, values / config.rating_scale, 1.0)

    age_days = np.maximum(reference_ms - timestamps_ms, 0) / MS_PER_DAY
    decay = np.exp2(-age_days / config.half_life_days)

    return weights * rating_factor * decay


def signed_confidence(preference: NDArray[np.float64], alpha: float) -> NDArray[np.float32]:
    """Confidence with the sign of the preference, the encoding ``implicit`` expects.

    ``+c`` means ``p = 1`` with confidence ``c``; ``-c`` means ``p = 0`` with confidence ``c``.
    Callers drop entries whose preference is exactly zero: they carry no information and are
    identical to an unobserved pair (``c = 1, p = 0``).
    """
    confidence = 1.0 + alpha * np.abs(preference)
    return (np.sign(preference) * confidence).astype(np.float32)
