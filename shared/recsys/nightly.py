"""The nightly job: read the archive window, train, judge, publish, swap the pointer last.

The quality gate holds out the window's last day: the candidate is trained on the days
before it, then it and the serving model are each asked for the top k of every user active
that day (folded from their history before it). The candidate replaces the serving model
only if its hit rate is not worse by more than the configured relative margin. A refused
candidate is still written, with the verdict in its manifest, so the reason can be read
later; only the pointer stays.

Events of deleted users stamped at or before their deletion are dropped as the window is
read (see :mod:`recsys.erasure`): the archive keeps them, training never uses them again.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import date, timedelta

from recsys.config import HistoryLimits, ModelConfig
from recsys.erasure import outlives_deletion
from recsys.errors import InvalidEventError, RecsysError, TrainingError
from recsys.evaluation import holdout_hit_rate
from recsys.events import Event, parse_event
from recsys.interactions import InteractionLog
from recsys.model import ItemModel
from recsys.ports import CatalogSource, DeletionRegistry, EventArchive, ModelStore
from recsys.serving import load_published_model
from recsys.state import HistoryEntry, merge_history
from recsys.training import train_model

HOLDOUT_MS = 24 * 60 * 60 * 1000
MAX_HOLDOUT_SHARE = 0.5

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QualityGate:
    """How the candidate is judged against the serving model."""

    k: int = 10
    max_relative_drop: float = 0.1
    max_users: int = 5000


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
    published: bool
    verdict: str
    candidate_hit_rate: float | None
    serving_hit_rate: float | None
    serving_version: str | None
    deleted_user_events: int = 0

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
    gate: QualityGate | None = None,
    deletions: DeletionRegistry | None = None,
) -> NightlyReport:
    """Train on the archive's last ``window_days`` days (up to ``today``) and maybe publish.

    Archived lines that are not valid events are skipped and counted: the archive receives
    everything producers sent, poison included, and one bad line must not stop the model.
    With ``deletions``, events of deleted users up to their deletion are left out as well.

    Raises
    ------
    TrainingError
        When the window holds no valid event before the holdout day; nothing is published
        and the serving model stays.
    ModelIntegrityError
        When training produced an unusable model (non-finite factors): it is never published.
    """
    gate = gate or QualityGate()
    first_day = today - timedelta(days=window_days - 1)
    events, lines_read, rejected = _read_window(archive, first_day, today)
    events, deleted_user_events = _without_deleted_users(events, deletions)
    train_events, holdout = _split_holdout(events)
    if not train_events:
        raise TrainingError(f"no valid events in the archive from {first_day} to {today}")

    log = InteractionLog.from_events(train_events)
    trained = train_model(log, catalog.read_catalog(), config)
    candidate = trained.model

    serving, serving_problem = _serving_model(models)
    verdict = _judge(candidate, serving, serving_problem, train_events, holdout, config, gate)
    manifest = candidate.manifest.model_copy(update={"metrics": verdict.metrics})

    if verdict.publish:
        pointer = models.publish(
            candidate.version, trained.payload, manifest.model_dump_json(indent=2).encode()
        )
        logger.info("published model %s: %s", pointer.version, verdict.reason)
    else:
        logger.warning("kept serving model %s: %s", verdict.serving_version, verdict.reason)

    return NightlyReport(
        model_version=candidate.version,
        first_day=first_day.isoformat(),
        last_day=today.isoformat(),
        lines_read=lines_read,
        rejected_lines=rejected,
        events_trained=len(log),
        users=len(log.user_ids),
        items=len(log.item_ids),
        train_seconds=round(trained.seconds, 3),
        published=verdict.publish,
        verdict=verdict.reason,
        candidate_hit_rate=verdict.candidate_hit_rate,
        serving_hit_rate=verdict.serving_hit_rate,
        serving_version=verdict.serving_version,
        deleted_user_events=deleted_user_events,
    )


@dataclass(frozen=True)
class _Verdict:
    publish: bool
    reason: str
    candidate_hit_rate: float | None = None
    serving_hit_rate: float | None = None
    serving_version: str | None = None

    @property
    def metrics(self) -> dict[str, float]:
        rates = {
            "holdout_hit_rate": self.candidate_hit_rate,
            "serving_holdout_hit_rate": self.serving_hit_rate,
        }
        return {name: value for name, value in rates.items() if value is not None}


def _read_window(
    archive: EventArchive, first_day: date, last_day: date
) -> tuple[list[Event], int, int]:
    rejected = Counter[str]()
    events, lines_read = [], 0
    for line in archive.read_lines(first_day, last_day):
        lines_read += 1
        try:
            events.append(parse_event(line))
        except InvalidEventError as error:
            rejected[error.reason.split(":")[0]] += 1
    if rejected:
        logger.warning(
            "skipped %d invalid archived lines: %s", sum(rejected.values()), dict(rejected)
        )
    return events, lines_read, sum(rejected.values())


def _without_deleted_users(
    events: list[Event], deletions: DeletionRegistry | None
) -> tuple[list[Event], int]:
    if deletions is None:
        return events, 0
    deleted_at = deletions.all_deletions()
    kept = [e for e in events if outlives_deletion(e.user_id, e.timestamp_ms, deleted_at)]
    if len(kept) < len(events):
        logger.info(
            "left out %d events of %d deleted users", len(events) - len(kept), len(deleted_at)
        )
    return kept, len(events) - len(kept)


def _split_holdout(events: list[Event]) -> tuple[list[Event], list[Event]]:
    """Events of the last 24 hours before the newest one are held out; the rest train.

    When that day holds most of the window (a young deployment, a replayed backlog), holding
    it out would starve the model: then everything trains and the gate has nothing to judge.
    """
    if not events:
        return [], []
    cutoff_ms = max(event.timestamp_ms for event in events) - HOLDOUT_MS
    train = [event for event in events if event.timestamp_ms <= cutoff_ms]
    holdout = [event for event in events if event.timestamp_ms > cutoff_ms]
    if len(holdout) > MAX_HOLDOUT_SHARE * len(events):
        return events, []
    return train, holdout


def _serving_model(models: ModelStore) -> tuple[ItemModel | None, str | None]:
    try:
        return load_published_model(models), None
    except RecsysError as error:
        return None, f"{error.__class__.__name__}: {error}"


def _judge(
    candidate: ItemModel,
    serving: ItemModel | None,
    serving_problem: str | None,
    train_events: list[Event],
    holdout: list[Event],
    config: ModelConfig,
    gate: QualityGate,
) -> _Verdict:
    histories = _histories(train_events)
    targets = _holdout_targets(holdout, config, gate.max_users)
    candidate_rate = holdout_hit_rate(candidate, histories, targets, gate.k)
    if serving is None:
        reason = (
            f"no usable serving model ({serving_problem})" if serving_problem else "first model"
        )
        return _Verdict(True, reason, _finite(candidate_rate))
    if math.isnan(candidate_rate):
        return _Verdict(True, "no holdout users to judge on", None, None, serving.version)

    serving_rate = holdout_hit_rate(serving, histories, targets, gate.k)
    floor = serving_rate * (1.0 - gate.max_relative_drop)
    publish = candidate_rate >= floor
    comparison = ">=" if publish else "<"
    reason = (
        f"holdout hit rate@{gate.k} {candidate_rate:.4f} {comparison} {floor:.4f} "
        f"(serving {serving_rate:.4f} less {gate.max_relative_drop:.0%})"
    )
    return _Verdict(publish, reason, candidate_rate, serving_rate, serving.version)


def _histories(events: list[Event]) -> dict[str, tuple[HistoryEntry, ...]]:
    per_user: dict[str, list[Event]] = {}
    for event in events:
        per_user.setdefault(event.user_id, []).append(event)
    return {user: merge_history((), evs, HistoryLimits())[0] for user, evs in per_user.items()}


def _holdout_targets(
    holdout: list[Event], config: ModelConfig, max_users: int
) -> dict[str, frozenset[str]]:
    positive = config.weights.type_weights
    per_user: dict[str, set[str]] = {}
    for event in holdout:
        if positive[event.event_type] > 0:
            per_user.setdefault(event.user_id, set()).add(event.item_id)
    # A deterministic subset bounds the gate's cost on a large day.
    chosen = sorted(per_user)[:max_users]
    return {user: frozenset(per_user[user]) for user in chosen}


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value
