"""Interaction data for evaluation and benchmarks: MovieLens 100K and a synthetic generator.

MovieLens gives real behaviour at a small scale; the generator gives behaviour with a known
structure (power-law popularity, latent taste clusters) at any scale, from a seed. Neither
is shipped with the package: MovieLens is read from ``$RECSYS_DATA_DIR/movielens-100k``
because its licence forbids redistribution.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator

from recsys.catalog import CatalogItem
from recsys.errors import DatasetNotFoundError
from recsys.events import MIN_EPOCH_MS, Event, EventType
from recsys.interactions import EVENT_TYPE_CODES, EVENT_TYPES, InteractionLog

DATA_DIR_VARIABLE = "RECSYS_DATA_DIR"
MOVIELENS_FOLDER = "movielens-100k"
MOVIELENS_FILES = ("u.data", "u.item", "u.genre")
STAR_RATINGS = range(1, 6)

# u.item carries titles such as "Misérables, Les (1995)" in Latin-1, not UTF-8.
MOVIELENS_TEXT_ENCODING = "latin-1"

MS_PER_DAY = 86_400_000

# 2024-01-01T00:00:00Z: an arbitrary fixed origin, so the same seed gives the same log.
SYNTHETIC_START_MS = 1_704_067_200_000

# A plausible app mix: mostly browsing, some intent, a few explicit signals.
SYNTHETIC_TYPE_MIX: dict[EventType, float] = {
    EventType.VIEW: 0.55,
    EventType.CLICK: 0.25,
    EventType.ADD_TO_CART: 0.07,
    EventType.PURCHASE: 0.04,
    EventType.LIKE: 0.07,
    EventType.DISLIKE: 0.02,
}


# --------------------------------------------------------------------------------------
# MovieLens 100K
# --------------------------------------------------------------------------------------


class MovieLensMapping(BaseModel):
    """How a MovieLens star rating becomes an interaction event.

    Every event keeps its stars as ``value``, whatever type it is mapped to, so a mapping
    changes what the model is told without losing what the user said.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_types: dict[int, EventType] = Field(
        default_factory=lambda: dict.fromkeys(STAR_RATINGS, EventType.RATING),
        description="Event type for each star rating from 1 to 5; every rating must appear.",
    )

    @field_validator("event_types")
    @classmethod
    def _covers_every_star(cls, event_types: dict[int, EventType]) -> dict[int, EventType]:
        if set(event_types) != set(STAR_RATINGS):
            raise ValueError("must map exactly the star ratings 1, 2, 3, 4 and 5")
        return event_types


@dataclass(frozen=True)
class MovieLens:
    """MovieLens 100K as events, catalogue and columnar log.

    Attributes
    ----------
    events : list[Event]
        One event per rating, sorted by ``(timestamp, event_id)``.
    catalog : list[CatalogItem]
        One entry per movie, in the order of ``u.item``; categories are its genre names.
    log : InteractionLog
        The same events as arrays, in the same order.
    """

    events: list[Event]
    catalog: list[CatalogItem]
    log: InteractionLog


def movielens_dir(data_dir: Path | None = None) -> Path:
    """Find the MovieLens 100K folder.

    Parameters
    ----------
    data_dir
        The folder that contains ``movielens-100k/``. Defaults to ``$RECSYS_DATA_DIR``,
        read at call time.

    Returns
    -------
    Path
        ``<data_dir>/movielens-100k``, holding at least ``u.data``, ``u.item`` and ``u.genre``.

    Raises
    ------
    DatasetNotFoundError
        When no folder is given and the variable is unset, or the folder or a file is missing.
    """
    if data_dir is None:
        configured = os.environ.get(DATA_DIR_VARIABLE, "").strip()
        if not configured:
            raise DatasetNotFoundError(
                f"MovieLens 100K not configured: set {DATA_DIR_VARIABLE} to the folder that "
                f"contains {MOVIELENS_FOLDER}/ (with {', '.join(MOVIELENS_FILES)})"
            )
        data_dir = Path(configured)

    folder = Path(data_dir) / MOVIELENS_FOLDER
    missing = [name for name in MOVIELENS_FILES if not (folder / name).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"MovieLens 100K not found: {folder} lacks {', '.join(missing)}; set "
            f"{DATA_DIR_VARIABLE} to the folder that contains {MOVIELENS_FOLDER}/"
        )
    return folder


def load_movielens(
    data_dir: Path | None = None, mapping: MovieLensMapping | None = None
) -> MovieLens:
    """Load MovieLens 100K ratings as validated events, with the movie catalogue.

    Event ids are ``ml-<user>-<item>`` (the dataset rates each pair at most once), user and
    item ids are the dataset's numeric ids as strings, and timestamps are UTC.

    Parameters
    ----------
    data_dir
        The folder that contains ``movielens-100k/``; ``$RECSYS_DATA_DIR`` by default.
    mapping
        How stars become event types; every rating is a ``rating`` event by default.

    Raises
    ------
    DatasetNotFoundError
        When the dataset cannot be found (see :func:`movielens_dir`).
    ValueError
        When ``u.data`` rates a (user, item) pair twice, which would make event ids collide.
    """
    folder = movielens_dir(data_dir)
    mapping = mapping or MovieLensMapping()

    # Columns: user_id, item_id, stars, epoch seconds; tab separated, no header.
    ratings = np.array((folder / "u.data").read_text().split(), dtype=np.int64).reshape(-1, 4)
    events = [
        Event(
            event_id=f"ml-{user}-{item}",
            user_id=str(user),
            item_id=str(item),
            event_type=mapping.event_types[stars],
            value=float(stars),
            # Epoch seconds from 1997 are below the model's epoch-ms floor: pass datetimes.
            timestamp=datetime.fromtimestamp(seconds, tz=UTC),
        )
        for user, item, stars, seconds in ratings.tolist()
    ]
    if len({event.event_id for event in events}) != len(events):
        raise ValueError(f"{folder / 'u.data'} rates some (user, item) pair more than once")
    events.sort(key=lambda event: (event.timestamp, event.event_id))

    return MovieLens(
        events=events,
        catalog=_read_movielens_catalog(folder),
        log=InteractionLog.from_events(events),
    )


def _read_movielens_catalog(folder: Path) -> list[CatalogItem]:
    genre_lines = (folder / "u.genre").read_text(encoding=MOVIELENS_TEXT_ENCODING).splitlines()
    genres_by_position = {
        int(position): name
        for name, position in (line.split("|") for line in genre_lines if line.strip())
    }
    genre_names = [genres_by_position[position] for position in sorted(genres_by_position)]

    catalog = []
    item_lines = (folder / "u.item").read_text(encoding=MOVIELENS_TEXT_ENCODING).splitlines()
    for line in item_lines:
        if not line.strip():
            continue
        # movie_id | title | release | video release | IMDb URL | one 0/1 flag per genre
        fields = line.split("|")
        flags = fields[5 : 5 + len(genre_names)]
        catalog.append(
            CatalogItem(
                item_id=fields[0],
                title=fields[1],
                categories=tuple(
                    name for name, flag in zip(genre_names, flags, strict=True) if flag == "1"
                ),
            )
        )
    return catalog


# --------------------------------------------------------------------------------------
# Synthetic interactions
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticData:
    """A generated interaction log with the latent structure that produced it.

    Attributes
    ----------
    log : InteractionLog
        The events in time order; ``user_ids`` are ``u000000``..., ``item_ids`` ``i00000``...
    catalog : list[CatalogItem]
        One available item per item id, whose single category names its cluster.
    user_clusters : NDArray[np.int32], shape (n_users,)
        Each user's taste cluster, indexed by user code.
    item_clusters : NDArray[np.int32], shape (n_items,)
        Each item's cluster, indexed by item code.
    seed : int
        The seed that generated it; part of every event id.
    """

    log: InteractionLog
    catalog: list[CatalogItem]
    user_clusters: NDArray[np.int32]
    item_clusters: NDArray[np.int32]
    seed: int

    def events(self, limit: int | None = None) -> Iterator[Event]:
        """Yield the first ``limit`` events (all by default) as validated pydantic events.

        Meant for small uses such as feeding a local stream; event ids are
        ``syn<seed>-<row>``. Raises pydantic's ``ValidationError`` if the log was generated
        with timestamps in the future, which the event model rejects.
        """
        log = self.log
        rows = len(log) if limit is None else min(max(limit, 0), len(log))
        for row in range(rows):
            value = float(log.values[row])
            yield Event(
                event_id=f"syn{self.seed}-{row}",
                user_id=log.user_ids[log.users[row]],
                item_id=log.item_ids[log.items[row]],
                event_type=EVENT_TYPES[log.event_types[row]],
                value=None if np.isnan(value) else value,
                timestamp=int(log.timestamps_ms[row]),
            )


def generate_synthetic(
    n_users: int,
    n_items: int,
    n_events: int,
    *,
    n_clusters: int = 20,
    seed: int = 0,
    start_ms: int = SYNTHETIC_START_MS,
    span_days: float = 90,
    popularity_exponent: float = 1.0,
    in_cluster_share: float = 0.8,
) -> SyntheticData:
    """Generate a seeded interaction log with power-law popularity and taste clusters.

    The model: item ``i`` has popularity ``1 / rank_i ** popularity_exponent`` for a random
    ranking of the items; users and items each belong to one of ``n_clusters`` clusters.
    Each event picks a user in proportion to a log-normal activity level, then, with
    probability ``in_cluster_share``, an item of the user's cluster in proportion to its
    popularity, otherwise an item of the whole catalogue in proportion to its popularity.
    Event types follow :data:`SYNTHETIC_TYPE_MIX`; timestamps are uniform over the span and
    sorted. Everything is built as arrays, so millions of events take seconds.

    Parameters
    ----------
    n_users, n_items
        Sizes of the id tables; a user or item may end up with no events.
    n_events
        Number of events (rows of the log).
    n_clusters
        Number of taste clusters, at most ``n_items`` so that none is empty.
    seed
        Seed of the generator; the same arguments give an identical result.
    start_ms
        Epoch milliseconds of the first possible event.
    span_days
        Length of the time window the events spread over.
    popularity_exponent
        Zipf exponent of item popularity; 0 makes every item equally popular.
    in_cluster_share
        Probability that an event falls in the user's own cluster.

    Returns
    -------
    SyntheticData
        The log (``values`` all NaN), the catalogue and the true clusters.

    Raises
    ------
    ValueError
        When a size or parameter is out of range.
    """
    _check_synthetic_arguments(
        n_users, n_items, n_events, n_clusters, start_ms, span_days, popularity_exponent
    )
    if not 0.0 <= in_cluster_share <= 1.0:
        raise ValueError("in_cluster_share must be between 0 and 1")
    rng = np.random.default_rng(seed)

    # Every cluster gets at least one item: deal the items round-robin, then shuffle.
    item_clusters = rng.permutation(np.arange(n_items) % n_clusters).astype(np.int32)
    user_clusters = rng.integers(0, n_clusters, size=n_users).astype(np.int32)
    ranks = rng.permutation(n_items) + 1.0
    popularity = (1.0 / ranks**popularity_exponent).astype(np.float64)
    activity = rng.lognormal(mean=0.0, sigma=1.0, size=n_users)

    # How many events each user makes, then one row per event. Rows come out grouped by
    # user; the random time order below shuffles them.
    events_per_user = rng.multinomial(n_events, activity / activity.sum())
    users = np.repeat(np.arange(n_users, dtype=np.int32), events_per_user)

    in_cluster = rng.random(n_events) < in_cluster_share
    items = np.empty(n_events, dtype=np.int32)
    items[in_cluster] = _draw_within_clusters(
        rng, popularity, item_clusters, user_clusters[users[in_cluster]]
    )
    items[~in_cluster] = _draw_proportional(rng, popularity, int(np.count_nonzero(~in_cluster)))
    del in_cluster

    type_codes = np.array([EVENT_TYPE_CODES[t] for t in SYNTHETIC_TYPE_MIX], dtype=np.uint8)
    type_weights = np.array(list(SYNTHETIC_TYPE_MIX.values()), dtype=np.float64)
    event_types = type_codes[_draw_proportional(rng, type_weights, n_events)]

    # Sorted uniform times given to the rows in a random order: the same distribution as
    # sorting rows by random times, without an argsort of millions of keys.
    span_ms = max(int(span_days * MS_PER_DAY), 1)
    timestamps_ms = np.sort(start_ms + rng.integers(0, span_ms, size=n_events, dtype=np.int64))
    order = rng.permutation(n_events)

    log = InteractionLog(
        users=users[order],
        items=items[order],
        event_types=event_types[order],
        values=np.full(n_events, np.nan, dtype=np.float32),
        timestamps_ms=timestamps_ms,
        user_ids=_numbered_ids("u", n_users, min_width=6),
        item_ids=_numbered_ids("i", n_items, min_width=5),
    )
    return SyntheticData(
        log=log,
        catalog=_synthetic_catalog(log.item_ids, item_clusters, n_clusters),
        user_clusters=user_clusters,
        item_clusters=item_clusters,
        seed=seed,
    )


def _check_synthetic_arguments(
    n_users: int,
    n_items: int,
    n_events: int,
    n_clusters: int,
    start_ms: int,
    span_days: float,
    popularity_exponent: float,
) -> None:
    if n_users < 1 or n_items < 1:
        raise ValueError("n_users and n_items must be at least 1")
    if n_events < 0:
        raise ValueError("n_events must not be negative")
    if not 1 <= n_clusters <= n_items:
        raise ValueError("n_clusters must be between 1 and n_items, so that no cluster is empty")
    if start_ms < MIN_EPOCH_MS:
        raise ValueError("start_ms must be epoch milliseconds (this looks like seconds)")
    if span_days <= 0:
        raise ValueError("span_days must be positive")
    if popularity_exponent < 0:
        raise ValueError("popularity_exponent must not be negative")


def _draw_proportional(
    rng: np.random.Generator, weights: NDArray[np.float64], size: int
) -> NDArray[np.intp]:
    """Indices drawn with probability proportional to ``weights`` (all positive).

    Inverse-CDF sampling with one ``searchsorted``: far faster than ``rng.choice`` with
    ``p`` for millions of draws, and it accepts unnormalised weights.
    """
    cumulative = np.cumsum(weights)
    drawn = np.searchsorted(cumulative, rng.random(size) * cumulative[-1], side="right")

    # Rounding can put a draw a hair past the last bound.
    return np.minimum(drawn, len(weights) - 1)


def _draw_within_clusters(
    rng: np.random.Generator,
    popularity: NDArray[np.float64],
    item_clusters: NDArray[np.int32],
    clusters: NDArray[np.int32],
) -> NDArray[np.intp]:
    """For each entry of ``clusters``, an item of that cluster drawn by popularity.

    The items are grouped by cluster and each group's CDF is shifted up by its cluster
    number, so cluster ``c`` owns the interval ``(c, c + 1]``: one ``searchsorted`` of
    ``c + u`` then samples every event from its own cluster at once.
    """
    by_cluster = np.argsort(item_clusters, kind="stable")
    grouped_clusters = item_clusters[by_cluster]
    grouped_popularity = popularity[by_cluster]
    n_clusters = int(grouped_clusters[-1]) + 1

    cluster_totals = np.bincount(grouped_clusters, weights=grouped_popularity)
    cluster_ends = np.cumsum(np.bincount(grouped_clusters, minlength=n_clusters))
    cluster_starts = cluster_ends - np.bincount(grouped_clusters, minlength=n_clusters)
    within = grouped_popularity / cluster_totals[grouped_clusters]
    running_total = np.cumsum(within)
    offset_before = np.concatenate(([0.0], running_total[cluster_ends[:-1] - 1]))
    shifted_cdf = grouped_clusters + (running_total - offset_before[grouped_clusters])
    # Each group ends exactly at c + 1, whatever the rounding of its running sum.
    shifted_cdf[cluster_ends - 1] = np.arange(1, n_clusters + 1, dtype=np.float64)

    drawn = np.searchsorted(shifted_cdf, clusters + rng.random(clusters.shape[0]), side="right")
    drawn = np.clip(drawn, cluster_starts[clusters], cluster_ends[clusters] - 1)
    return by_cluster[drawn]


def _numbered_ids(prefix: str, count: int, min_width: int) -> tuple[str, ...]:
    width = max(min_width, len(str(count - 1)))
    return tuple(f"{prefix}{number:0{width}d}" for number in range(count))


def _synthetic_catalog(
    item_ids: tuple[str, ...], item_clusters: NDArray[np.int32], n_clusters: int
) -> list[CatalogItem]:
    width = max(2, len(str(n_clusters - 1)))
    category_names = [f"cat-{cluster:0{width}d}" for cluster in range(n_clusters)]
    return [
        CatalogItem(item_id=item_id, categories=(category_names[cluster],))
        for item_id, cluster in zip(item_ids, item_clusters.tolist(), strict=True)
    ]
