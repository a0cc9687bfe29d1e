"""Training: our nightly path against calling ``implicit`` directly on the same matrix.

Both sides factor the identical signed-confidence matrix with the same ALS parameters, under
one BLAS thread (implicit runs its own OpenMP threads). Ours also builds that matrix from the
columnar log and packages the artifact (npz payload, sha256, validation, manifest JSON); the
ratio is what that costs on top of the factorization.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date

from bench_common import Report, interleaved_timings, median
from bench_fixtures import movielens
from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix
from threadpoolctl import threadpool_limits

from recsys.catalog import CatalogItem
from recsys.config import ALSConfig, ModelConfig
from recsys.datasets import generate_synthetic
from recsys.errors import DatasetNotFoundError
from recsys.events import Event
from recsys.interactions import InteractionLog
from recsys.nightly import run_nightly
from recsys.training import confidence_matrix, fit_als, train_model
from tests.fakes import InMemoryArchive, InMemoryCatalog, InMemoryModelStore

SECTION = "training"
TRAINING_TARGET_RATIO = 1.25
CONFIG = ModelConfig(als=ALSConfig(factors=64, iterations=15))


@dataclass(frozen=True)
class TrainingSet:
    """One data set to train on; ``events`` only where the archive path is measured too."""

    name: str
    log: InteractionLog
    catalog: list[CatalogItem]
    repeats: int
    events: list[Event] | None = None


def run(report: Report) -> None:
    """Measure training on MovieLens (when present) and on synthetic logs."""
    for training_set in _training_sets(report):
        print(f"training on {training_set.name} ({len(training_set.log):,} events)", flush=True)
        _measure(report, training_set)


def _training_sets(report: Report) -> list[TrainingSet]:
    sets = []
    if report.quick:
        report.skip(SECTION, "movielens-100k", "quick mode trains on synthetic data only")
    else:
        try:
            data = movielens()
        except DatasetNotFoundError as error:
            report.skip(SECTION, "movielens-100k", f"MovieLens 100K not found ({error})")
        else:
            sets.append(TrainingSet("movielens-100k", data.log, data.catalog, 3, data.events))

    # About 50 events per user, a catalogue a fifth to a half the size of the user base.
    sizes = [("synthetic-20k", 400, 500, 20_000, 2)]
    if not report.quick:
        sizes = [
            ("synthetic-1M", 20_000, 10_000, 1_000_000, 5),
            ("synthetic-5M", 100_000, 50_000, 5_000_000, 2),
        ]
    for name, n_users, n_items, n_events, repeats in sizes:
        synthetic = generate_synthetic(n_users, n_items, n_events, seed=7)
        events = list(synthetic.events()) if report.quick else None
        sets.append(TrainingSet(name, synthetic.log, synthetic.catalog, repeats, events))
    return sets


def _measure(report: Report, training_set: TrainingSet) -> None:
    log = training_set.log
    reference_ms = int(log.timestamps_ms.max())
    matrix = confidence_matrix(log, CONFIG.weights, CONFIG.als.alpha, reference_ms)

    cases: dict[str, Callable[[], object]] = {
        "ours": lambda: _train_ours(training_set, matrix.nnz),
        "implicit": lambda: fit_implicit(matrix, CONFIG.als),
    }
    if training_set.events is not None:
        archive = _archive_of(training_set.events)
        cases["nightly"] = lambda: _run_nightly(archive, training_set.catalog)
    samples = interleaved_timings(cases, repeats=training_set.repeats, warmup=0)

    implicit_seconds = median(samples["implicit"])
    report.add(
        SECTION,
        f"{training_set.name}.implicit_fit_seconds",
        implicit_seconds,
        "s",
    )
    report.add(
        SECTION,
        f"{training_set.name}.train_seconds",
        median(samples["ours"]),
        "s",
        reference=implicit_seconds,
        target=TRAINING_TARGET_RATIO,
    )
    if "nightly" in samples:
        report.add(
            SECTION,
            f"{training_set.name}.nightly_from_archive_seconds",
            median(samples["nightly"]),
            "s",
            reference=implicit_seconds,
        )


def _train_ours(training_set: TrainingSet, expected_nonzeros: int) -> int:
    """Log -> confidence matrix -> ALS -> payload and manifest bytes, as the nightly job."""
    with threadpool_limits(limits=1, user_api="blas"):
        trained = train_model(training_set.log, training_set.catalog, CONFIG)
        manifest_json = trained.model.manifest.model_dump_json().encode()

    # The comparison is only fair if both sides factor the same matrix.
    if trained.model.manifest.counts["nonzeros"] != expected_nonzeros:
        raise RuntimeError("train_model built another matrix than the reference")
    return len(trained.payload) + len(manifest_json)


def fit_implicit(matrix: csr_matrix, als: ALSConfig) -> AlternatingLeastSquares:
    """The reference: implicit's fit alone, exactly as the nightly job calls it."""
    model: AlternatingLeastSquares = fit_als(matrix, als)
    return model


def _archive_of(events: list[Event]) -> InMemoryArchive:
    """The events as the archive holds them: one JSON line each, grouped by UTC day."""
    days: defaultdict[date, list[bytes]] = defaultdict(list)
    for event in events:
        days[event.timestamp.astimezone(UTC).date()].append(event.model_dump_json().encode())
    return InMemoryArchive(dict(days))


def _run_nightly(archive: InMemoryArchive, catalog: list[CatalogItem]) -> int:
    """The nightly job itself: archived lines -> parsed events -> model -> published."""
    first_day, last_day = min(archive.days), max(archive.days)
    models = InMemoryModelStore()
    with threadpool_limits(limits=1, user_api="blas"):
        nightly = run_nightly(
            archive=archive,
            catalog=InMemoryCatalog(catalog),
            models=models,
            config=CONFIG,
            window_days=(last_day - first_day).days + 1,
            today=last_day,
        )
    if nightly.rejected_lines:
        raise RuntimeError(f"the archive had {nightly.rejected_lines} invalid lines")
    return len(json.dumps(nightly.as_dict(), default=str)) + len(models.objects)
