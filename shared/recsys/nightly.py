"""The nightly job: read the archive window, train, publish, swap the pointer last."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, timedelta

from recsys.config import ModelConfig
from recsys.errors import InvalidEventError, TrainingError
from recsys.events import Event, parse_event
from recsys.interactions import InteractionLog
from recsys.ports import CatalogSource, EventArchive, ModelStore
from recsys.training import train_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NightlyReport:
    """What one nightly run read, trained and published."""

    model_version: str
    first_day: str
    last_day: str
    lines_read: int
    rejected_lines: int
    events_trained: int
    users: int
    items: int
    train_seconds: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def run_nightly(
    *,
    archive: EventArchive,
    catalog: CatalogSource,
    models: ModelStore,
    config: ModelConfig,
    window_days: int,
    today: date,
) -> NightlyReport:
    """Train on the archive's last ``window_days`` days (up to ``today``) and publish.

    Archived lines that are not valid events are skipped and counted: the archive receives
    everything producers sent, poison included, and one bad line must not stop the model.

    Raises
    ------
    TrainingError
        When the window holds no valid event; nothing is published and the serving model
        stays.
    """
    first_day = today - timedelta(days=window_days - 1)
    rejected = Counter[str]()
    lines_read = 0

    def valid_events() -> Iterator[Event]:
        nonlocal lines_read
        for line in archive.read_lines(first_day, today):
            lines_read += 1
            try:
                yield parse_event(line)
            except InvalidEventError as error:
                rejected[error.reason.split(":")[0]] += 1

    log = InteractionLog.from_events(valid_events())
    if rejected:
        logger.warning(
            "skipped %d invalid archived lines: %s", sum(rejected.values()), dict(rejected)
        )
    if len(log) == 0:
        raise TrainingError(f"no valid events in the archive from {first_day} to {today}")

    trained = train_model(log, catalog.read_catalog(), config)
    model = trained.model
    pointer = models.publish(
        model.version, trained.payload, model.manifest.model_dump_json(indent=2).encode()
    )
    logger.info("published model %s (pointer swapped at %s)", pointer.version, pointer.published_at)

    return NightlyReport(
        model_version=model.version,
        first_day=first_day.isoformat(),
        last_day=today.isoformat(),
        lines_read=lines_read,
        rejected_lines=sum(rejected.values()),
        events_trained=len(log),
        users=len(log.user_ids),
        items=len(log.item_ids),
        train_seconds=round(trained.seconds, 3),
    )
