"""The nightly job: archive window in, model out, pointer swapped last."""

import json
from datetime import date, timedelta

import pytest

from recsys.config import ALSConfig, ModelConfig
from recsys.errors import ModelIntegrityError, TrainingError
from recsys.model import load_model, parse_manifest
from recsys.nightly import QualityGate, run_nightly
from tests.factories import make_event
from tests.fakes import (
    InMemoryArchive,
    InMemoryCatalog,
    InMemoryDeletionRegistry,
    InMemoryModelStore,
)

TODAY = date(2026, 11, 2)
CONFIG = ModelConfig(als=ALSConfig(factors=2, iterations=3))


def _line(event) -> bytes:
    return event.model_dump_json().encode()


def _archive() -> InMemoryArchive:
    events = [
        make_event(f"e{u}-{i}", user_id=f"u{u}", item_id=f"i{i}", minutes=u * 10 + i)
        for u in range(6)
        for i in range(5)
        if (u + i) % 2 == 0
    ]
    return InMemoryArchive(
        {
            TODAY: [_line(e) for e in events] + [b"not json", b'{"event_id": "x"}'],
            TODAY - timedelta(days=1): [_line(events[0])],  # a Firehose duplicate
            TODAY - timedelta(days=30): [_line(make_event("old", item_id="old-item"))],
        }
    )


def test_nightly_trains_on_the_window_and_publishes_pointer_last():
    models = InMemoryModelStore()

    report = run_nightly(
        archive=_archive(),
        catalog=InMemoryCatalog(),
        models=models,
        config=CONFIG,
        window_days=7,
        today=TODAY,
    )

    assert models.write_order[-1] == "models/current.json"
    assert models.pointer.version == report.model_version
    manifest = parse_manifest(models.read_object(models.pointer.manifest_key))
    model = load_model(models.read_object(models.pointer.payload_key), manifest)
    assert "old-item" not in model.item_ids
    assert report.lines_read == 18 and report.rejected_lines == 2
    assert report.events_trained == 15  # the archived duplicate counts once
    assert json.loads(json.dumps(report.as_dict()))["first_day"] == "2026-10-27"


def test_nightly_with_no_valid_events_publishes_nothing():
    models = InMemoryModelStore()
    archive = InMemoryArchive({TODAY: [b"garbage"]})
    with pytest.raises(TrainingError, match="no valid events"):
        run_nightly(
            archive=archive,
            catalog=InMemoryCatalog(),
            models=models,
            config=CONFIG,
            window_days=7,
            today=TODAY,
        )
    assert models.pointer is None


def _parity_archive() -> InMemoryArchive:
    """20 users, 20 items; users use items of their own parity; day 3 is the holdout day."""
    days: dict[date, list[bytes]] = {}
    for user in range(20):
        own = [item for item in range(20) if item % 2 == user % 2]
        picks = [own[(user + step) % len(own)] for step in range(9)]
        for step, item in enumerate(picks):
            day = step // 4  # four items on each of the first two days, one on the third
            event = make_event(
                f"p{user}-{item}",
                user_id=f"u{user}",
                item_id=f"i{item}",
                minutes=day * DAY_MINUTES + user * 10 + step,
            )
            days.setdefault(TODAY - timedelta(days=2 - day), []).append(_line(event))
    return InMemoryArchive(days)


DAY_MINUTES = 24 * 60
GOOD = ModelConfig(als=ALSConfig(factors=2, regularization=0.1, iterations=10))
# Regularization this strong shrinks every factor to nearly zero: a model with no signal.
USELESS = ModelConfig(als=ALSConfig(factors=2, regularization=1e6, iterations=2))


def _nightly(models, config, gate=None):
    return run_nightly(
        archive=_parity_archive(),
        catalog=InMemoryCatalog(),
        models=models,
        config=config,
        window_days=7,
        today=TODAY,
        gate=gate or QualityGate(k=3),
    )


def test_first_model_is_published_without_a_comparison():
    models = InMemoryModelStore()
    report = _nightly(models, GOOD)
    assert report.published and report.verdict == "first model"
    assert report.serving_hit_rate is None
    assert report.candidate_hit_rate is not None
    assert report.events_trained == 160  # the holdout day's 20 events are held out


def test_candidate_as_good_as_the_serving_model_replaces_it_and_records_both_rates():
    models = InMemoryModelStore()
    first = _nightly(models, GOOD)
    second = _nightly(models, GOOD.model_copy(update={"als": ALSConfig(factors=2, seed=7)}))

    assert second.published
    assert second.serving_version == first.model_version
    manifest = parse_manifest(models.read_object(models.pointer.manifest_key))
    assert manifest.metrics["serving_holdout_hit_rate"] == pytest.approx(second.serving_hit_rate)
    assert manifest.metrics["holdout_hit_rate"] == pytest.approx(second.candidate_hit_rate)


def test_candidate_worse_than_the_margin_is_refused_and_the_pointer_stays():
    # GIVEN a good serving model
    models = InMemoryModelStore()
    _nightly(models, GOOD)
    pointer_before = models.pointer

    # WHEN tonight's candidate has no signal
    report = _nightly(models, USELESS)

    # THEN it is judged worse than the margin allows and not published, with the reason
    assert report.candidate_hit_rate < report.serving_hit_rate * 0.9
    assert not report.published
    assert "<" in report.verdict and "serving" in report.verdict
    assert models.pointer == pointer_before


def test_unreadable_serving_model_does_not_block_a_good_candidate():
    models = InMemoryModelStore()
    _nightly(models, GOOD)
    models.objects[models.pointer.payload_key] = b"corrupt"
    report = _nightly(models, GOOD.model_copy(update={"als": ALSConfig(factors=2, seed=3)}))
    assert report.published
    assert "no usable serving model" in report.verdict


def test_non_finite_factors_are_never_published(monkeypatch):
    import numpy as np

    import recsys.training as training

    real = training.factorize

    def broken(matrix, als):
        users, items = real(matrix, als)
        items[0, 0] = np.nan
        return users, items

    monkeypatch.setattr(training, "factorize", broken)
    models = InMemoryModelStore()
    with pytest.raises(ModelIntegrityError, match="NaN"):
        _nightly(models, GOOD)
    assert models.pointer is None and not models.objects


def test_events_of_deleted_users_up_to_their_deletion_are_left_out():
    # GIVEN the archive of the first test, where u0 made three events at minutes 0, 2 and 4,
    # and a marker that deleted u0 just after the second of them
    deleted_at_ms = make_event("x", minutes=2).timestamp_ms
    deletions = InMemoryDeletionRegistry({"u0": deleted_at_ms})

    # WHEN the nightly job runs with the markers
    report = run_nightly(
        archive=_archive(),
        catalog=InMemoryCatalog(),
        models=InMemoryModelStore(),
        config=CONFIG,
        window_days=7,
        today=TODAY,
        deletions=deletions,
    )

    # THEN the events up to the deletion (the first one archived twice) are not trained on;
    # the later one is
    assert report.deleted_user_events == 3
    assert report.events_trained == 13
