"""Tests of the MovieLens 100K loader and the synthetic interaction generator."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from recsys.datasets import (
    MovieLens,
    MovieLensMapping,
    SyntheticData,
    generate_synthetic,
    load_movielens,
    movielens_dir,
)
from recsys.errors import DatasetNotFoundError
from recsys.events import EventType, parse_event
from recsys.interactions import EVENT_TYPES

MS_PER_DAY = 86_400_000


def _real_movielens_data_dir() -> Path:
    """The folder holding the real MovieLens 100K, or skip the calling test."""
    configured = os.environ.get("RECSYS_DATA_DIR", "").strip()
    if not configured:
        pytest.skip(
            "MovieLens 100K: RECSYS_DATA_DIR is unset (point it at movielens-100k/'s parent)"
        )
    if not (Path(configured) / "movielens-100k" / "u.data").is_file():
        pytest.skip(f"MovieLens 100K: no movielens-100k/u.data in RECSYS_DATA_DIR={configured}")
    return Path(configured)


@pytest.fixture(scope="module")
def movielens() -> MovieLens:
    return load_movielens(_real_movielens_data_dir())


@pytest.fixture
def tiny_movielens_dir(tmp_path: Path) -> Path:
    """A three-rating dataset in the MovieLens file formats, with a Latin-1 title."""
    folder = tmp_path / "movielens-100k"
    folder.mkdir()
    (folder / "u.genre").write_text("unknown|0\nAction|1\nComedy|2\n\n", encoding="latin-1")
    (folder / "u.item").write_text(
        "1|Amélie (2001)|01-Jan-2001||http://example.invalid/1|0|0|1\n"
        "2|Heat (1995)|01-Jan-1995||http://example.invalid/2|0|1|1\n",
        encoding="latin-1",
    )
    # Two ratings share a second, so their order must come from the event id.
    (folder / "u.data").write_text("2\t1\t5\t900000000\n1\t2\t1\t880000000\n1\t1\t3\t900000000\n")
    return tmp_path


# --------------------------------------------------------------------------------------
# MovieLens: locating the files
# --------------------------------------------------------------------------------------


def test_movielens_dir_without_variable_raises_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN no data folder argument and no RECSYS_DATA_DIR
    monkeypatch.delenv("RECSYS_DATA_DIR", raising=False)

    # WHEN / THEN locating the dataset fails with a message saying what to set
    with pytest.raises(DatasetNotFoundError, match="set RECSYS_DATA_DIR"):
        movielens_dir()


def test_movielens_dir_with_missing_folder_raises_naming_the_folder(tmp_path: Path) -> None:
    # GIVEN a data folder without movielens-100k/
    expected_folder = tmp_path / "movielens-100k"

    # WHEN / THEN locating the dataset fails and names where it looked
    with pytest.raises(DatasetNotFoundError, match=str(expected_folder)):
        movielens_dir(tmp_path)


def test_movielens_dir_reads_the_variable_at_call_time(
    monkeypatch: pytest.MonkeyPatch, tiny_movielens_dir: Path
) -> None:
    # GIVEN RECSYS_DATA_DIR set after the module was imported
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tiny_movielens_dir))

    # WHEN the dataset is located without an argument
    folder = movielens_dir()

    # THEN it is the movielens-100k folder inside the variable's folder
    assert folder == tiny_movielens_dir / "movielens-100k"


# --------------------------------------------------------------------------------------
# MovieLens: parsing, on a tiny dataset in the same formats
# --------------------------------------------------------------------------------------


def test_load_movielens_orders_by_timestamp_then_event_id(tiny_movielens_dir: Path) -> None:
    # GIVEN ratings listed out of time order, two of them in the same second

    # WHEN loaded
    data = load_movielens(tiny_movielens_dir)

    # THEN the earliest comes first and the tie is broken by event id
    assert [event.event_id for event in data.events] == ["ml-1-2", "ml-1-1", "ml-2-1"]


def test_load_movielens_converts_epoch_seconds_to_utc_datetimes(
    tiny_movielens_dir: Path,
) -> None:
    # GIVEN a rating at 880000000 epoch seconds
    # (880000000 s = 10185 days + 16000 s; day 10185 after 1970-01-01 is 1997-11-20 and
    # 16000 s = 4 h 26 min 40 s)

    # WHEN loaded
    first = load_movielens(tiny_movielens_dir).events[0]

    # THEN the event's timestamp is that instant in UTC
    assert first.timestamp == datetime(1997, 11, 20, 4, 26, 40, tzinfo=UTC)


def test_load_movielens_keeps_ids_and_stars(tiny_movielens_dir: Path) -> None:
    # GIVEN user 1 rated item 2 with one star

    # WHEN loaded with the default mapping
    first = load_movielens(tiny_movielens_dir).events[0]

    # THEN the ids are the dataset's numbers and the stars are a rating's value
    assert (first.user_id, first.item_id) == ("1", "2")
    assert (first.event_type, first.value) == (EventType.RATING, 1.0)


def test_load_movielens_decodes_titles_as_latin1(tiny_movielens_dir: Path) -> None:
    # GIVEN a u.item title written in Latin-1

    # WHEN loaded
    catalog = load_movielens(tiny_movielens_dir).catalog

    # THEN the accented title reads correctly
    assert catalog[0].title == "Amélie (2001)"


def test_load_movielens_names_the_flagged_genres(tiny_movielens_dir: Path) -> None:
    # GIVEN item 2 flagged Action and Comedy in the u.genre order unknown, Action, Comedy

    # WHEN loaded
    catalog = load_movielens(tiny_movielens_dir).catalog

    # THEN its categories are those genre names
    assert (catalog[1].item_id, catalog[1].categories) == ("2", ("Action", "Comedy"))


def test_load_movielens_log_matches_events(tiny_movielens_dir: Path) -> None:
    # GIVEN the tiny dataset

    # WHEN loaded
    data = load_movielens(tiny_movielens_dir)

    # THEN the log holds the same events in the same order
    log = data.log
    assert [log.user_ids[code] for code in log.users] == ["1", "1", "2"]
    assert [log.item_ids[code] for code in log.items] == ["2", "1", "1"]
    assert log.timestamps_ms.tolist() == [880_000_000_000, 900_000_000_000, 900_000_000_000]


def test_mapping_turns_low_stars_into_dislikes(tiny_movielens_dir: Path) -> None:
    # GIVEN a mapping that calls 1 and 2 stars a dislike
    mapping = MovieLensMapping(
        event_types={
            1: EventType.DISLIKE,
            2: EventType.DISLIKE,
            3: EventType.RATING,
            4: EventType.RATING,
            5: EventType.LIKE,
        }
    )

    # WHEN loaded with it
    events = load_movielens(tiny_movielens_dir, mapping).events

    # THEN each rating has its mapped type and keeps its stars as value
    assert [(event.event_type, event.value) for event in events] == [
        (EventType.DISLIKE, 1.0),
        (EventType.RATING, 3.0),
        (EventType.LIKE, 5.0),
    ]


def test_mapping_missing_a_star_is_rejected() -> None:
    # GIVEN a mapping that forgets 5 stars
    incomplete = {stars: EventType.RATING for stars in (1, 2, 3, 4)}

    # WHEN / THEN the configuration does not validate
    with pytest.raises(ValidationError, match="star ratings"):
        MovieLensMapping(event_types=incomplete)


# --------------------------------------------------------------------------------------
# MovieLens: the real dataset
# --------------------------------------------------------------------------------------


@pytest.mark.movielens
def test_movielens_has_published_counts(movielens: MovieLens) -> None:
    # GIVEN the README's counts: 100,000 ratings by 943 users of 1,682 movies

    # WHEN the loaded dataset is counted
    counts = (len(movielens.events), len(movielens.log.user_ids), len(movielens.log.item_ids))

    # THEN they agree, and every movie is in the catalogue
    assert counts == (100_000, 943, 1_682)
    assert len(movielens.catalog) == 1_682


@pytest.mark.movielens
def test_movielens_rating_distribution_matches_published(movielens: MovieLens) -> None:
    # GIVEN the README's distribution of stars
    published = {1: 6_110, 2: 11_370, 3: 27_145, 4: 34_174, 5: 21_201}

    # WHEN the loaded values are counted
    counts = Counter(int(event.value or 0) for event in movielens.events)

    # THEN they agree
    assert counts == published


@pytest.mark.movielens
def test_movielens_spans_published_first_and_last_timestamps(movielens: MovieLens) -> None:
    # GIVEN the README's range, 874724710 to 893286638 epoch seconds

    # WHEN the first and last events are read
    first, last = movielens.events[0], movielens.events[-1]

    # THEN they are those instants in UTC
    assert first.timestamp == datetime(1997, 9, 20, 3, 5, 10, tzinfo=UTC)
    assert last.timestamp == datetime(1998, 4, 22, 23, 10, 38, tzinfo=UTC)


@pytest.mark.movielens
def test_movielens_events_are_sorted_with_unique_ids(movielens: MovieLens) -> None:
    # GIVEN the loaded events
    keys = [(event.timestamp, event.event_id) for event in movielens.events]

    # WHEN / THEN they are in (timestamp, event_id) order and no id repeats
    assert keys == sorted(keys)
    assert len({event.event_id for event in movielens.events}) == len(keys)


@pytest.mark.movielens
def test_movielens_toy_story_has_its_genres(movielens: MovieLens) -> None:
    # GIVEN movie 1, flagged Animation, Children's and Comedy in u.item

    # WHEN it is looked up in the catalogue
    toy_story = next(item for item in movielens.catalog if item.item_id == "1")

    # THEN the title and genre names are right
    assert toy_story.title == "Toy Story (1995)"
    assert toy_story.categories == ("Animation", "Children's", "Comedy")


@pytest.mark.movielens
def test_movielens_mapping_is_honoured_on_real_data() -> None:
    # GIVEN a mapping of 1 and 2 stars to dislikes
    stars_to_type = {stars: EventType.RATING for stars in (3, 4, 5)}
    stars_to_type |= {1: EventType.DISLIKE, 2: EventType.DISLIKE}
    mapping = MovieLensMapping(event_types=stars_to_type)

    # WHEN the real dataset is loaded with it
    data = load_movielens(_real_movielens_data_dir(), mapping)

    # THEN the dislikes are exactly the 6,110 + 11,370 = 17,480 low ratings
    types = Counter(event.event_type for event in data.events)
    assert types == {EventType.DISLIKE: 17_480, EventType.RATING: 82_520}


# --------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic() -> SyntheticData:
    return generate_synthetic(1_000, 2_000, 200_000, n_clusters=20, seed=7)


def test_synthetic_same_seed_gives_identical_output() -> None:
    # GIVEN two runs with the same arguments and seed
    first = generate_synthetic(200, 300, 5_000, seed=3)
    second = generate_synthetic(200, 300, 5_000, seed=3)

    # WHEN / THEN every array, id table and catalogue entry is the same
    for name in ("users", "items", "event_types", "timestamps_ms"):
        np.testing.assert_array_equal(getattr(first.log, name), getattr(second.log, name))
    assert first.log.user_ids == second.log.user_ids
    assert first.log.item_ids == second.log.item_ids
    assert first.catalog == second.catalog


def test_synthetic_different_seeds_differ() -> None:
    # GIVEN two runs that differ only in their seed
    first = generate_synthetic(200, 300, 5_000, seed=3)
    second = generate_synthetic(200, 300, 5_000, seed=4)

    # WHEN / THEN the logs differ
    assert not np.array_equal(first.log.items, second.log.items)


def test_synthetic_has_requested_sizes_and_dtypes(synthetic: SyntheticData) -> None:
    # GIVEN 1,000 users, 2,000 items and 200,000 events requested
    log = synthetic.log

    # WHEN / THEN the log and catalogue have those sizes and the documented dtypes
    assert (len(log), len(log.user_ids), len(log.item_ids)) == (200_000, 1_000, 2_000)
    assert len(synthetic.catalog) == 2_000
    assert (log.users.dtype, log.items.dtype) == (np.int32, np.int32)
    assert (log.event_types.dtype, log.values.dtype) == (np.uint8, np.float32)
    assert log.timestamps_ms.dtype == np.int64
    assert log.users.max() < 1_000 and log.items.max() < 2_000


def test_synthetic_ids_are_zero_padded(synthetic: SyntheticData) -> None:
    # GIVEN the generated id tables

    # WHEN / THEN they read u000000... and i00000...
    assert synthetic.log.user_ids[123] == "u000123"
    assert synthetic.log.item_ids[42] == "i00042"


def test_synthetic_catalog_category_is_the_item_cluster(synthetic: SyntheticData) -> None:
    # GIVEN the catalogue and the true item clusters

    # WHEN each item's category is compared with its cluster
    expected = [(f"cat-{cluster:02d}",) for cluster in synthetic.item_clusters.tolist()]

    # THEN they match, and every item is available
    assert [item.categories for item in synthetic.catalog] == expected
    assert all(item.available for item in synthetic.catalog)


def test_synthetic_popularity_is_concentrated(synthetic: SyntheticData) -> None:
    # GIVEN Zipf popularity with exponent 1 over 2,000 items: globally the top 20 would
    # draw H(20) / H(2000) = 3.60 / 8.18 = 44% of events; uniform popularity gives 1%
    counts = np.sort(np.bincount(synthetic.log.items, minlength=2_000))[::-1]

    # WHEN the top 1% of items (20) is measured
    top_share = counts[:20].sum() / counts.sum()

    # THEN it holds well over 20 times its uniform share
    assert top_share > 0.20


def test_synthetic_zero_exponent_spreads_events_evenly() -> None:
    # GIVEN exponent 0, so every item is equally popular (100 events each on average)
    data = generate_synthetic(1_000, 2_000, 200_000, popularity_exponent=0.0, seed=7)
    counts = np.sort(np.bincount(data.log.items, minlength=2_000))[::-1]

    # WHEN the top 1% of items is measured
    top_share = counts[:20].sum() / counts.sum()

    # THEN it stays near 1%, far below the concentrated case
    assert top_share < 0.03


def test_synthetic_events_mostly_fall_in_the_users_cluster(synthetic: SyntheticData) -> None:
    # GIVEN 80% of events drawn inside the user's cluster, and the other 20% from the whole
    # catalogue landing there about 1 time in 20: 0.8 + 0.2 / 20 = 0.81 expected; chance
    # alone would give 1 / 20 = 0.05
    log = synthetic.log
    same_cluster = synthetic.item_clusters[log.items] == synthetic.user_clusters[log.users]

    # WHEN the share is measured
    share = same_cluster.mean()

    # THEN it is close to the model's
    assert 0.78 < share < 0.85


def test_synthetic_user_activity_is_skewed(synthetic: SyntheticData) -> None:
    # GIVEN log-normal activity with sigma 1: the top 10% of users hold
    # 1 - Phi(1.2816 - 1) = 1 - Phi(0.28) = 0.39 of events; equal activity would give 0.10
    counts = np.sort(np.bincount(synthetic.log.users, minlength=1_000))[::-1]

    # WHEN the most active 100 users are measured
    top_share = counts[:100].sum() / counts.sum()

    # THEN they hold far more than their equal share
    assert top_share > 0.30


def test_synthetic_event_types_are_mostly_views_and_clicks(synthetic: SyntheticData) -> None:
    # GIVEN the generated event types
    counts = Counter(EVENT_TYPES[code] for code in synthetic.log.event_types.tolist())
    total = sum(counts.values())

    # WHEN / THEN browsing dominates, every other app signal appears, and there are no ratings
    assert (counts[EventType.VIEW] + counts[EventType.CLICK]) / total > 0.6
    for event_type in (EventType.ADD_TO_CART, EventType.PURCHASE, EventType.LIKE):
        assert counts[event_type] > 0
    assert 0 < counts[EventType.DISLIKE] < counts[EventType.LIKE]
    assert counts[EventType.RATING] == 0


def test_synthetic_timestamps_are_sorted_within_the_span() -> None:
    # GIVEN a 10-day span from a fixed start
    start_ms = 1_700_000_000_000
    data = generate_synthetic(100, 100, 10_000, n_clusters=5, start_ms=start_ms, span_days=10)
    stamps = data.log.timestamps_ms

    # WHEN / THEN they never go backwards and stay inside [start, start + 10 days)
    assert np.all(np.diff(stamps) >= 0)
    assert stamps[0] >= start_ms and stamps[-1] < start_ms + 10 * MS_PER_DAY


def test_synthetic_events_yields_valid_events_matching_the_log() -> None:
    # GIVEN a small synthetic log
    data = generate_synthetic(50, 40, 500, n_clusters=4, seed=1)
    log = data.log

    # WHEN the first 25 rows are read as events
    events = list(data.events(limit=25))

    # THEN each one survives the public parser unchanged and mirrors its row
    assert len(events) == 25
    for row, event in enumerate(events):
        assert parse_event(event.model_dump(mode="json")) == event
        assert event.user_id == log.user_ids[log.users[row]]
        assert event.item_id == log.item_ids[log.items[row]]
        assert event.event_type == EVENT_TYPES[log.event_types[row]]
        assert event.timestamp_ms == log.timestamps_ms[row]


def test_synthetic_events_without_limit_yields_every_row_with_unique_ids() -> None:
    # GIVEN a small synthetic log
    data = generate_synthetic(20, 30, 300, n_clusters=3, seed=2)

    # WHEN all events are read
    event_ids = [event.event_id for event in data.events()]

    # THEN there is one per row, none repeated
    assert len(event_ids) == len(set(event_ids)) == 300


def test_synthetic_rejects_more_clusters_than_items() -> None:
    # GIVEN 5 items and the default 20 clusters

    # WHEN / THEN generation refuses, since some cluster would have no item
    with pytest.raises(ValueError, match="n_clusters"):
        generate_synthetic(10, 5, 100)


def test_synthetic_rejects_start_in_epoch_seconds() -> None:
    # GIVEN a start time given in seconds by mistake

    # WHEN / THEN generation refuses
    with pytest.raises(ValueError, match="start_ms"):
        generate_synthetic(10, 10, 100, n_clusters=2, start_ms=1_700_000_000)
