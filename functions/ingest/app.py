"""Ingest: Kinesis batches of user events -> user histories and vectors in DynamoDB."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys.runtime.kinesis import handle_kinesis_batch
from recsys.runtime.settings import IngestSettings
from recsys.runtime.wiring import ingest_dependencies

logger = Logger()
tracer = Tracer()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"recsys"})

# A failed record is reported, never raised: with every record failed Lambda still gets a
# partial-failure response naming them, and retries from the first.
processor = BatchProcessor(
    event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = IngestSettings.from_environ()

    deps = ingest_dependencies(settings)

    return handle_kinesis_batch(
        event, context, deps=deps, processor=processor, logger=logger, metrics=metrics
    )
