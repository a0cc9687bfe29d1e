"""Recommend: the REST API of the apps (lists, ranking, events, catalogue, deletion, health).

The routes live in :mod:`recsys.runtime.api`; this module only wires the resolver to the
container's dependencies and the Powertools decorators.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys.runtime.api import build_api
from recsys.runtime.settings import RecommendSettings
from recsys.runtime.wiring import RecommendDependencies, recommend_dependencies

logger = Logger()
tracer = Tracer()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"recsys"})


def _dependencies() -> RecommendDependencies:
    return recommend_dependencies(RecommendSettings.from_environ())


app: APIGatewayRestResolver = build_api(_dependencies, logger, metrics)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = app.resolve(event, context)

    # One count per answer by status class (Responses2xx, Responses4xx, Responses5xx).
    status_class = f"Responses{int(response['statusCode']) // 100}xx"
    metrics.add_metric(name=status_class, unit=MetricUnit.Count, value=1)
    return response
