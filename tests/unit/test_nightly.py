"""The nightly job: archive window in, model out, pointer swapped last."""

import json
from datetime import date, timedelta

import pytest

from recsys.config import ALSConfig, ModelConfig
from recsys.errors import TrainingError
from recsys.model import load_model, parse_manifest
from recsys.nightly import run_nightly
from tests.factories import make_event
from tests.fakes import InMemoryArchive, InMemoryCatalog, InMemoryModelStore

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
