"""The REST API: API Gateway proxy events -> the serving use cases.

Parameters are declared with types and bounds, so Powertools validates them and describes
them in the generated OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit

from recsys.events import ID_PATTERN
from recsys.runtime.http import install_error_handlers
from recsys.runtime.wiring import RecommendDependencies
from recsys.serving import MAX_K, RecommendationRequest, RecommendationResponse
from recsys.serving import recommend as recommend_for_user

CATEGORY_MAX_LENGTH = 64


def split_ids(values: list[str] | None) -> tuple[str, ...]:
    """Query values given repeated (``a&exclude=b``) or comma-separated (``a,b``), flattened."""
    if not values:
        return ()
    return tuple(part for value in values for part in value.split(",") if part)


def build_api(
    get_deps: Callable[[], RecommendDependencies], logger: Logger, metrics: Metrics
) -> APIGatewayRestResolver:
    """The resolver with every route of the recommend function."""
    app = APIGatewayRestResolver(enable_validation=True)
    install_error_handlers(app, logger)

    @app.get(
        "/users/<userId>/recommendations",
        summary="A user's recommendations",
        description="Top-k items for the user, without what they have seen; popular items "
        "for users with no history.",
    )
    def get_recommendations(
        userId: Annotated[str, Path(pattern=ID_PATTERN, description="The user.")],  # noqa: N803
        k: Annotated[int, Query(ge=1, le=MAX_K, description="List length, 1 to 100.")] = 10,
        exclude: Annotated[
            list[str] | None,
            Query(description="Item ids to leave out, repeated or comma-separated."),
        ] = None,
        category: Annotated[
            list[str] | None, Query(description="Only items in one of these categories.")
        ] = None,
        exclude_category: Annotated[
            list[str] | None, Query(description="No items in any of these categories.")
        ] = None,
    ) -> RecommendationResponse:
        deps = get_deps()
        logger.append_keys(user_id=userId)
        request = _request(k, exclude, category, exclude_category)

        model = deps.models.require()
        response, stats = recommend_for_user(
            user_id=userId, request=request, store=deps.states, model=model
        )

        metrics.add_metric(name="Recommendations", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=f"Source_{response.source}", unit=MetricUnit.Count, value=1)
        logger.info(
            "served recommendations",
            source=response.source,
            items=len(response.items),
            model_version=response.model_version,
            refolded=stats.refolded,
            history_events=stats.history_events,
        )
        return response

    return app


def _request(
    k: int,
    exclude: list[str] | None,
    category: list[str] | None,
    exclude_category: list[str] | None,
) -> RecommendationRequest:
    from pydantic import ValidationError

    from recsys.errors import InvalidRequestError

    try:
        return RecommendationRequest(
            k=k,
            exclude=split_ids(exclude),
            include_categories=split_ids(category),
            exclude_categories=split_ids(exclude_category),
        )
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        field = str(first["loc"][0]) if first["loc"] else "request"
        raise InvalidRequestError(field, str(first["msg"])) from None
