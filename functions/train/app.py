"""Train: nightly, the archive window -> a new item model in S3, pointer swapped last."""

from datetime import UTC, date, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys.errors import TrainingError
from recsys.nightly import QualityGate, run_nightly
from recsys.runtime.settings import TrainSettings
from recsys.runtime.wiring import train_dependencies

logger = Logger()
tracer = Tracer()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"recsys"})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = TrainSettings.from_environ()
    deps = train_dependencies(settings)
    today = _schedule_day(event)

    try:
        report = run_nightly(
            archive=deps.archive,
            catalog=deps.catalog,
            models=deps.models,
            config=settings.model_config_,
            window_days=settings.TRAIN_WINDOW_DAYS,
            today=today,
            gate=QualityGate(max_relative_drop=settings.QUALITY_MAX_RELATIVE_DROP),
            deletions=deps.deletions,
        )
    except TrainingError as error:
        # Retrying cannot create events that are not there; the serving model stays.
        logger.error("training skipped", reason=str(error), day=today.isoformat())
        metrics.add_metric(name="ModelsPublished", unit=MetricUnit.Count, value=0)
        return {"published": False, "reason": str(error)}

    metrics.add_metric(name="ModelsPublished", unit=MetricUnit.Count, value=int(report.published))
    metrics.add_metric(name="EventsTrained", unit=MetricUnit.Count, value=report.events_trained)
    metrics.add_metric(name="TrainSeconds", unit=MetricUnit.Seconds, value=report.train_seconds)
    if report.published:
        logger.info("published model", **report.as_dict())
    else:
        logger.warning("quality gate kept the serving model", **report.as_dict())
    return report.as_dict()


def _schedule_day(event: dict[str, Any]) -> date:
    """The day the schedule fired for (EventBridge's ``time``), or today when absent."""
    fired_at = event.get("time")
    if isinstance(fired_at, str):
        try:
            return datetime.fromisoformat(fired_at.replace("Z", "+00:00")).astimezone(UTC).date()
        except ValueError:
            logger.warning("ignoring unparseable event time", time=fired_at)
    return datetime.now(UTC).date()
