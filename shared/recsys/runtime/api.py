"""The REST API: API Gateway proxy events -> the serving, catalogue and user use cases.

Parameters and bodies are declared with types and bounds, so Powertools validates them and
describes them in the generated OpenAPI document (``scripts/openapi.py`` writes it to
``docs/openapi.json``; a test keeps the committed file equal to what this module generates).

Who calls is never a parameter: API Gateway's Cognito authorizer has verified the caller's
token and put its claims in ``requestContext.authorizer.claims``. ``sub`` is the user id;
members of the ``admin`` group may edit the catalogue and delete any user. A user may read,
rank for and delete only themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from recsys.catalog_admin import (
    CatalogEntryInput,
    ItemDeletion,
    ItemView,
    delete_item,
    put_item,
    view_item,
)
from recsys.erasure import DeletionReceipt, delete_user
from recsys.errors import InvalidRequestError
from recsys.events import ID_PATTERN
from recsys.ports import Availability, CatalogStore
from recsys.runtime.http import ErrorBody, HttpError, install_error_handlers
from recsys.runtime.wiring import RecommendDependencies
from recsys.serving import (
    MAX_K,
    HealthResponse,
    RankRequest,
    RankResponse,
    RecommendationRequest,
    RecommendationResponse,
    SimilarItemsResponse,
    model_health,
    rank_items,
    similar_items,
)
from recsys.serving import recommend as recommend_for_user
from recsys.submission import EventBatch, SubmissionResult, submit_events

API_TITLE = "Real-time recommendations"
API_VERSION = "1.0.0"
ADMIN_GROUP = "admin"
SECURITY_SCHEME = "cognito"
SECURED: list[dict[str, list[str]]] = [{SECURITY_SCHEME: []}]

# Query parameter -> the request field it fills, to name the parameter in an error.
_QUERY_OF_FIELD = {
    "k": "k",
    "exclude": "exclude",
    "include_categories": "category",
    "exclude_categories": "exclude_category",
    "attributes": "attr",
}
_ID = re.compile(ID_PATTERN)
_ERROR_DESCRIPTIONS = {
    400: "Invalid input; 'fields' names each parameter or body field at fault.",
    401: "No valid bearer token (answered by API Gateway before the function runs).",
    403: "The caller may not act on this user, or is not an admin.",
    404: "The item is not known.",
    413: "The body is too large.",
    415: "The body is not application/json.",
    503: "No model is published yet, or a backing service is not configured.",
}

HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])


@dataclass(frozen=True)
class Caller:
    """The authenticated user behind a request."""

    user_id: str
    is_admin: bool


def caller_of(event: dict[str, Any]) -> Caller:
    """The caller, from the Cognito authorizer's claims of a proxy event.

    Groups arrive as one string: comma-separated (``admin,editors``) or in brackets with
    spaces (``[admin editors]``); both are read.

    Raises
    ------
    HttpError
        401 when the event carries no usable ``sub`` claim: the route is not behind the
        authorizer, which is a deployment error, so the request is refused, never served.
    """
    context = event.get("requestContext") or {}
    claims = (context.get("authorizer") or {}).get("claims") or {}
    subject = claims.get("sub") if isinstance(claims, dict) else None
    if not isinstance(subject, str) or not _ID.match(subject):
        raise HttpError(401, "unauthorized", "the request carries no authenticated user")
    groups_claim = claims.get("cognito:groups") or ""
    groups = set(re.split(r"[,\s]+", str(groups_claim).strip("[]"))) - {""}
    return Caller(user_id=subject, is_admin=ADMIN_GROUP in groups)


def split_ids(values: list[str] | None) -> tuple[str, ...]:
    """Query values given repeated (``a&exclude=b``) or comma-separated (``a,b``), flattened."""
    if not values:
        return ()
    return tuple(part for value in values for part in value.split(",") if part)


def _responses(status: int, description: str, *errors: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses of a route: its success (schema from the return type) and errors."""
    responses: dict[int, Any] = {status: {"description": description}}
    for error in errors:
        responses[error] = {
            "description": _ERROR_DESCRIPTIONS[error],
            "content": {"application/json": {"model": ErrorBody}},
        }
    return cast(dict[int, OpenAPIResponse], responses)


KQuery = Annotated[int, Query(ge=1, le=MAX_K, description="List length, 1 to 100.")]
ExcludeQuery = Annotated[
    list[str] | None,
    Query(description="Item ids never to return; repeated or comma-separated, 100 at most."),
]
CategoryQuery = Annotated[
    list[str] | None,
    Query(description="Only items in at least one of these categories; repeatable."),
]
ExcludeCategoryQuery = Annotated[
    list[str] | None, Query(description="No items in any of these categories; repeatable.")
]
AttrQuery = Annotated[
    list[str] | None,
    Query(
        description="Only items with this attribute, as name:value (e.g. brand:acme); "
        "repeat for several, an item must have all of them."
    ),
]
UserIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="A user id.")]
ItemIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="An item id.")]


def build_api(
    get_deps: Callable[[], RecommendDependencies], logger: Logger, metrics: Metrics
) -> APIGatewayRestResolver:
    """The resolver with every route of the recommend function."""
    app = APIGatewayRestResolver(enable_validation=True)
    own_handlers: set[Callable[..., Any]] = set()
    install_error_handlers(app, logger, lambda route: route.func in own_handlers)

    def own(handler: HandlerT) -> HandlerT:
        own_handlers.add(handler)
        return handler

    def caller() -> Caller:
        found = caller_of(app.current_event.raw_event)
        logger.append_keys(caller=found.user_id)
        return found

    def availability(deps: RecommendDependencies) -> Availability | None:
        return deps.catalog.availability() if deps.catalog is not None else None

    def serve_recommendations(
        user_id: str, request: RecommendationRequest
    ) -> RecommendationResponse:
        deps = get_deps()
        model = deps.models.require()
        response, stats = recommend_for_user(
            user_id=user_id,
            request=request,
            store=deps.states,
            model=model,
            availability=availability(deps),
        )
        metrics.add_metric(name="Recommendations", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=f"Source_{response.source}", unit=MetricUnit.Count, value=1)
        logger.info(
            "served recommendations",
            user_id=user_id,
            source=response.source,
            items=len(response.items),
            model_version=response.model_version,
            refolded=stats.refolded,
            history_events=stats.history_events,
        )
        return response

    # ---------------------------------------------------------- recommendations ---

    @app.get(
        "/me/recommendations",
        summary="The caller's recommendations",
        description="Top-k items for the authenticated user, without what they have seen "
        "and without hidden items; popular items for a user with no history.",
        tags=["recommendations"],
        security=SECURED,
        responses=_responses(200, "The list.", 400, 401, 503),
    )
    @own
    def get_my_recommendations(
        k: KQuery = 10,
        exclude: ExcludeQuery = None,
        category: CategoryQuery = None,
        exclude_category: ExcludeCategoryQuery = None,
        attr: AttrQuery = None,
    ) -> RecommendationResponse:
        user = caller()
        request = _request(k, exclude, category, exclude_category, attr)
        return serve_recommendations(user.user_id, request)

    @app.get(
        "/users/<userId>/recommendations",
        summary="A user's recommendations (the caller's own only)",
        description="Like /me/recommendations for the user in the path, which must be the "
        "caller: anyone else's answers 403, admins included.",
        tags=["recommendations"],
        security=SECURED,
        responses=_responses(200, "The list.", 400, 401, 403, 503),
    )
    @own
    def get_user_recommendations(
        userId: UserIdPath,  # noqa: N803 - the path parameter's public name
        k: KQuery = 10,
        exclude: ExcludeQuery = None,
        category: CategoryQuery = None,
        exclude_category: ExcludeCategoryQuery = None,
        attr: AttrQuery = None,
    ) -> RecommendationResponse:
        user = caller()
        if userId != user.user_id:
            raise HttpError(403, "forbidden", "a user may read only their own recommendations")
        request = _request(k, exclude, category, exclude_category, attr)
        return serve_recommendations(userId, request)

    @app.post(
        "/me/rank",
        summary="Rank the caller's candidate items",
        description="Orders up to 500 item ids for the caller. Ids the model does not know "
        "are never dropped: they come last, in the order sent, with known=false.",
        tags=["recommendations"],
        security=SECURED,
        responses=_responses(200, "The same ids, best first.", 400, 401, 413, 415, 503),
    )
    @own
    def rank_for_me(body: RankRequest) -> RankResponse:
        user = caller()
        deps = get_deps()
        response = rank_items(
            user_id=user.user_id,
            item_ids=body.item_ids,
            store=deps.states,
            model=deps.models.require(),
            availability=availability(deps),
        )
        unknown = sum(1 for item in response.items if not item.known)
        metrics.add_metric(name="Rankings", unit=MetricUnit.Count, value=1)
        logger.info("ranked items", items=len(response.items), unknown_items=unknown)
        return response

    @app.get(
        "/items/<itemId>/similar",
        summary="Items similar to an item",
        description="The k items whose factors are closest (cosine) to the item's, with "
        "the same filters as recommendations; 404 if the model does not know the item.",
        tags=["recommendations"],
        security=SECURED,
        responses=_responses(200, "The list.", 400, 401, 404, 503),
    )
    @own
    def get_similar_items(
        itemId: ItemIdPath,  # noqa: N803 - the path parameter's public name
        k: KQuery = 10,
        exclude: ExcludeQuery = None,
        category: CategoryQuery = None,
        exclude_category: ExcludeCategoryQuery = None,
        attr: AttrQuery = None,
    ) -> SimilarItemsResponse:
        caller()
        deps = get_deps()
        response = similar_items(
            item_id=itemId,
            request=_request(k, exclude, category, exclude_category, attr),
            model=deps.models.require(),
            availability=availability(deps),
        )
        metrics.add_metric(name="SimilarItems", unit=MetricUnit.Count, value=1)
        logger.info("served similar items", item_id=itemId, items=len(response.items))
        return response

    # ------------------------------------------------------------------- events ---

    @app.post(
        "/events",
        summary="Send the caller's events",
        description="Validates up to 100 events one by one and puts the valid ones on the "
        "event stream, partitioned by user. Each event is listed as accepted or rejected "
        "with a reason; resending an event (same event_id) never counts it twice.",
        tags=["events"],
        security=SECURED,
        status_code=202,
        responses=_responses(202, "Per-event outcome.", 400, 401, 413, 415, 503),
    )
    @own
    def post_events(body: EventBatch) -> SubmissionResult:
        user = caller()
        deps = get_deps()
        if deps.events is None:
            raise _not_configured("event stream")
        result = submit_events(
            caller_id=user.user_id, raw_events=body.events, publisher=deps.events
        )
        metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=len(result.accepted))
        metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=len(result.rejected))
        logger.info("received events", accepted=len(result.accepted), rejected=len(result.rejected))
        return result

    # -------------------------------------------------------------------- items ---

    @app.get(
        "/items/<itemId>",
        summary="A catalogue item",
        description="The admin entry of the item, or what the serving model knows of it.",
        tags=["items"],
        security=SECURED,
        responses=_responses(200, "The item.", 400, 401, 404, 503),
    )
    @own
    def get_item(itemId: ItemIdPath) -> ItemView:  # noqa: N803 - the path parameter's name
        caller()
        deps = get_deps()
        return view_item(item_id=itemId, store=_catalog(deps), model=deps.models.current())

    @app.put(
        "/items/<itemId>",
        summary="Create or replace a catalogue item (admin)",
        description="Writes the whole entry. Availability takes effect on the next request; "
        "categories and attributes reach the filters with the next model.",
        tags=["items"],
        security=SECURED,
        responses=_responses(200, "The stored item.", 400, 401, 403, 413, 415, 503),
    )
    @own
    def put_catalog_item(itemId: ItemIdPath, body: CatalogEntryInput) -> ItemView:  # noqa: N803
        _require_admin(caller())
        deps = get_deps()
        view = put_item(
            item_id=itemId, entry=body, store=_catalog(deps), model=deps.models.current()
        )
        metrics.add_metric(name="CatalogWrites", unit=MetricUnit.Count, value=1)
        logger.info("stored catalogue item", item_id=itemId, available=view.available)
        return view

    @app.delete(
        "/items/<itemId>",
        summary="Delete a catalogue item (admin)",
        description="Removes the admin entry and hides the item from the next request on.",
        tags=["items"],
        security=SECURED,
        responses=_responses(200, "What was deleted.", 400, 401, 403, 404, 503),
    )
    @own
    def delete_catalog_item(itemId: ItemIdPath) -> ItemDeletion:  # noqa: N803
        _require_admin(caller())
        deps = get_deps()
        deletion = delete_item(item_id=itemId, store=_catalog(deps), model=deps.models.current())
        metrics.add_metric(name="CatalogWrites", unit=MetricUnit.Count, value=1)
        logger.info("deleted catalogue item", item_id=itemId, existed=deletion.entry_deleted)
        return deletion

    # -------------------------------------------------------------------- users ---

    def erase(user_id: str) -> DeletionReceipt:
        deps = get_deps()
        if deps.deletions is None:
            raise _not_configured("deletion markers")
        receipt = delete_user(user_id=user_id, states=deps.states, deletions=deps.deletions)
        metrics.add_metric(name="UsersDeleted", unit=MetricUnit.Count, value=1)
        logger.info(
            "deleted user",
            user_id=user_id,
            state_deleted=receipt.state_deleted,
            history_events=receipt.history_events_deleted,
        )
        return receipt

    @app.delete(
        "/me",
        summary="Delete the caller",
        description="Removes the caller's state at once and keeps their events up to now "
        "out of every later training. Returns a receipt.",
        tags=["users"],
        security=SECURED,
        responses=_responses(200, "The receipt.", 400, 401, 503),
    )
    @own
    def delete_me() -> DeletionReceipt:
        return erase(caller().user_id)

    @app.delete(
        "/users/<userId>",
        summary="Delete a user (the caller, or anyone for an admin)",
        description="Like DELETE /me for the user in the path: the caller themselves, or "
        "any user when the caller is an admin; anyone else's answers 403.",
        tags=["users"],
        security=SECURED,
        responses=_responses(200, "The receipt.", 400, 401, 403, 503),
    )
    @own
    def delete_a_user(userId: UserIdPath) -> DeletionReceipt:  # noqa: N803
        user = caller()
        if userId != user.user_id and not user.is_admin:
            raise HttpError(403, "forbidden", "only admins may delete another user")
        return erase(userId)

    # ------------------------------------------------------------------- health ---

    @app.get(
        "/health",
        summary="The serving model's version and age",
        description="Open to anyone. 503 until a model is published.",
        tags=["health"],
        responses=_responses(200, "A model is serving.", 400, 503),
    )
    @own
    def get_health() -> HealthResponse:
        return model_health(get_deps().models.require())

    return app


def openapi_document(app: APIGatewayRestResolver) -> dict[str, Any]:
    """The OpenAPI document of ``app``, as committed in ``docs/openapi.json``.

    Powertools describes its request validation errors as 422 responses; this API answers
    them with 400 and the :class:`ErrorBody` the routes declare, so those entries and their
    schemas are taken out.
    """
    raw = app.get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        description="Recommendations, ranking, similar items, events, catalogue and user "
        "deletion for the mobile apps. Every route but /health needs the user pool's ID "
        "token as 'Authorization: Bearer <token>'; errors are JSON with the fields at fault.",
        servers=[Server(url="http://127.0.0.1:3000", description="The local stack.")],
        security_schemes={
            SECURITY_SCHEME: HTTPBearer(
                bearerFormat="JWT",
                description="An ID token of the Cognito user pool; the local stack accepts "
                "tokens from 'python -m local_stack.token --user <id> [--admin]'.",
            )
        },
    )
    document: dict[str, Any] = json.loads(raw)
    for path_item in document["paths"].values():
        for operation in path_item.values():
            operation["responses"].pop("422", None)

    # Drop the schemas nothing refers to any more, until none is left to drop.
    schemas = document.get("components", {}).get("schemas", {})
    while True:
        text = json.dumps(document)
        unused = [name for name in schemas if f'"#/components/schemas/{name}"' not in text]
        if not unused:
            return document
        for name in unused:
            del schemas[name]


def render_openapi() -> str:
    """The text of ``docs/openapi.json``: the document of the API, as indented JSON."""

    def no_dependencies() -> RecommendDependencies:
        raise RuntimeError("describing the API needs no dependencies")

    app = build_api(no_dependencies, Logger(service="openapi"), Metrics(namespace="openapi"))
    return json.dumps(openapi_document(app), indent=2, ensure_ascii=False) + "\n"


def _request(
    k: int,
    exclude: list[str] | None,
    category: list[str] | None,
    exclude_category: list[str] | None,
    attr: list[str] | None,
) -> RecommendationRequest:
    try:
        return RecommendationRequest(
            k=k,
            exclude=split_ids(exclude),
            include_categories=split_ids(category),
            exclude_categories=split_ids(exclude_category),
            attributes=tuple(attr or ()),
        )
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        field = str(first["loc"][0]) if first["loc"] else "request"
        problem = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "string_pattern_mismatch":
            problem = "holds a value that does not have the allowed form"
        raise InvalidRequestError(_QUERY_OF_FIELD.get(field, field), problem) from None


def _require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise HttpError(403, "forbidden", "this needs an admin")


def _catalog(deps: RecommendDependencies) -> CatalogStore:
    if deps.catalog is None:
        raise _not_configured("catalogue table")
    return deps.catalog


def _not_configured(what: str) -> HttpError:
    return HttpError(503, "not_configured", f"the {what} is not configured for this function")
