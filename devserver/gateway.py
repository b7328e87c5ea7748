"""What API Gateway does in front of the handlers: route, authorize, answer CORS preflights, invoke,
and map the result; plus the local-only /_local endpoints."""

import logging
from typing import Any

from devserver.auth import AuthenticationError, claims_from_authorization, gateway_claims
from devserver.lambda_host import LambdaHost
from devserver.pages import Pages
from devserver.proxy import (
    HttpRequest,
    HttpResponse,
    MalformedProxyResponse,
    error_response,
    http_response,
    json_response,
    rest_event,
)
from devserver.routing import Router
from devserver.schedules import ScheduleRunner
from devserver.template import ApiRoute, ApiSpec, CorsRule, Template

logger = logging.getLogger("devserver")

# API Gateway caps payloads at 10 MB; locally 1 MiB is plenty and keeps a worker from buffering more.
MAX_BODY_BYTES = 1024 * 1024
LOCAL_PREFIX = "/_local/"
_SCHEDULES_PREFIX = "/_local/schedules/"


class Gateway:
    def __init__(self, template: Template, host: LambdaHost, schedules: ScheduleRunner, dynamodb_endpoint: str) -> None:
        self._template = template
        self._host = host
        self._schedules = schedules
        self._dynamodb_endpoint = dynamodb_endpoint
        self._router = Router(template.routes)
        self._pages = Pages(template)  # the demo page, /openapi.json, /docs, /_local/token (local only)
        # The template's GatewayResponses give API Gateway's own refusals the Cors origin and expose Retry-After
        # (tests/unit/test_template_edge.py keeps the two in step), so a browser can read a 401 or a 429.
        cors = next((api.cors for api in template.apis.values() if api.cors is not None), None)
        self._refusal_headers = (
            [("Access-Control-Allow-Origin", cors.allow_origin), ("Access-Control-Expose-Headers", "Retry-After")]
            if cors
            else []
        )

    def handle(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(LOCAL_PREFIX):
            return self._pages.handle(request) or self._local(request)
        found = self._router.resource_for(request.path)
        if found is None:
            return self._pages.handle(request) or self._refusal(404, "NOT_FOUND", f"No route for {request.path}.")
        resource, path_parameters = found
        route = self._router.route(resource, request.method)
        # With Cors set, SAM gives every path its own OPTIONS method, which wins over ANY.
        api = self._template.apis[self._router.routes(resource)[0].api_id]
        if request.method == "OPTIONS" and (route is None or route.method == "ANY") and api.cors is not None:
            return self._preflight(request, resource, api, api.cors)
        if route is None:  # API Gateway's MISSING_AUTHENTICATION_TOKEN, which the template maps to 404 NOT_FOUND
            return self._refusal(404, "NOT_FOUND", f"No route for {request.method} {request.path}.")
        claims: dict[str, str] | None = None
        if route.authorizer is not None:
            try:
                claims = gateway_claims(claims_from_authorization(request.header("Authorization")))
            except AuthenticationError as error:
                return self._unauthenticated(request, error)
        event = rest_event(
            request,
            route=route,
            stage=self._template.apis[route.api_id].stage_name,
            path_parameters=path_parameters,
            claims=claims,
        )
        return self._invoke(route, event)

    def _invoke(self, route: ApiRoute, event: dict[str, Any]) -> HttpResponse:
        function = self._template.function(route.function_id)
        try:
            return http_response(self._host.invoke(function, event))
        except MalformedProxyResponse as error:
            logger.error("%s returned a malformed proxy response: %s", function.logical_id, error)
        except Exception:
            logger.exception("%s failed", function.logical_id)
        return self._refusal(502, "INTERNAL_ERROR", "Internal error.")

    def _refusal(self, status: int, code: str, message: str) -> HttpResponse:
        """One of API Gateway's own answers (its GatewayResponses): the error shape with the CORS headers."""
        response = error_response(status, code, message)
        return HttpResponse(response.status, [*response.headers, *self._refusal_headers], response.body)

    def _unauthenticated(self, request: HttpRequest, error: AuthenticationError) -> HttpResponse:
        logger.info("%s %s refused: %s", request.method, request.path, error)
        return self._refusal(401, "UNAUTHENTICATED", f"A valid bearer token is required: {error}.")

    def _preflight(self, request: HttpRequest, resource: str, api: ApiSpec, cors: CorsRule) -> HttpResponse:
        if api.authorize_preflight and api.default_authorizer is not None:
            try:
                claims_from_authorization(request.header("Authorization"))
            except AuthenticationError as error:
                return self._unauthenticated(request, error)
        routes = self._router.routes(resource)
        methods = cors.allow_methods or ",".join(sorted({route.method for route in routes} | {"OPTIONS"}))
        headers = [("Access-Control-Allow-Origin", cors.allow_origin), ("Access-Control-Allow-Methods", methods)]
        if cors.allow_headers:
            headers.append(("Access-Control-Allow-Headers", cors.allow_headers))
        if cors.max_age:
            headers.append(("Access-Control-Max-Age", cors.max_age))
        if cors.allow_credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return HttpResponse(200, [("Content-Type", "application/json"), *headers], b"")

    def _local(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/_local/info":
            if request.method != "GET":
                return error_response(405, "METHOD_NOT_ALLOWED", "Use GET.")
            return json_response(
                200,
                {
                    "dynamodbEndpoint": self._dynamodb_endpoint,
                    "tables": self._template.table_names,
                    "parameters": dict(self._template.parameters),
                },
            )
        if request.path.startswith(_SCHEDULES_PREFIX):
            if request.method != "POST":
                return error_response(405, "METHOD_NOT_ALLOWED", "Use POST.")
            return self._run_schedule(request.path.removeprefix(_SCHEDULES_PREFIX))
        return error_response(404, "NOT_FOUND", f"No local endpoint {request.path}.")

    def _run_schedule(self, name: str) -> HttpResponse:
        try:
            schedule = self._template.schedule(name)
        except KeyError:
            known = ", ".join(schedule.name for schedule in self._template.schedules)
            return error_response(404, "NOT_FOUND", f"No schedule event {name!r} (known: {known}).")
        try:
            return json_response(200, self._schedules.run(schedule))
        except Exception:
            logger.exception("schedule %s failed", schedule.name)
            return error_response(502, "INTERNAL_ERROR", f"Schedule {schedule.name} failed: see the server log.")
