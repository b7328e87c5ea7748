"""What API Gateway does in front of the handlers: route, throttle, authorize, answer CORS preflights, invoke
within its limits, and map the result; plus the local-only /_local endpoints.

Its own refusals are the template's GatewayResponses (status, headers, body), as API Gateway sends them.
"""

import json
import logging
import threading
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
from devserver.throttling import ANY_METHODS, Throttle

logger = logging.getLogger("devserver")

# API Gateway's request payload limit (REQUEST_TOO_LARGE past it).
MAX_BODY_BYTES = 10 * 1024 * 1024
# Lambda's synchronous invocation limits, on the JSON of the event and of the result: an event past it never
# reaches the handler (API Gateway answers 413), a result past it is an integration failure (502).
MAX_EVENT_BYTES = 6 * 1024 * 1024
MAX_RESULT_BYTES = 6 * 1024 * 1024 + 100
# What API Gateway sends for a response type the API does not configure: the type's status, this message, and
# the DEFAULT_4XX / DEFAULT_5XX response when the API configures that.
_RESPONSE_TYPES = {
    "UNAUTHORIZED": (401, "Unauthorized"),
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "THROTTLED": (429, "Too Many Requests"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out"),
    "INTEGRATION_FAILURE": (502, "Internal server error"),
}
LOCAL_PREFIX = "/_local/"
_SCHEDULES_PREFIX = "/_local/schedules/"


class Gateway:
    def __init__(
        self,
        template: Template,
        host: LambdaHost,
        schedules: ScheduleRunner,
        dynamodb_endpoint: str,
        throttle: Throttle | None = None,
        *,
        sqs_endpoint: str = "",
    ) -> None:
        self._template = template
        self._host = host
        self._schedules = schedules
        self._dynamodb_endpoint = dynamodb_endpoint
        self._sqs_endpoint = sqs_endpoint
        self._router = Router(template.routes)
        self._pages = Pages(template)  # the demo page, /openapi.json, /docs, /_local/token (local only)
        # The server passes buckets shared by its worker processes; alone, a gateway keeps its own.
        self._throttle = throttle or Throttle(template)
        # Refusals made before a route is known (an unknown path, a body too large) answer as this API would.
        routed = [route.api_id for route in template.routes]
        self._default_api = template.apis[routed[0]] if routed else next(iter(template.apis.values()))

    def handle(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(LOCAL_PREFIX):
            return self._pages.handle(request) or self._local(request)
        found = self._router.resource_for(request.path)
        if found is None:
            return self._pages.handle(request) or self.gateway_response(
                self._default_api, "MISSING_AUTHENTICATION_TOKEN", f"No route for {request.path}."
            )
        return self._handle_api(request, *found)

    def _handle_api(self, request: HttpRequest, resource: str, path_parameters: dict[str, str]) -> HttpResponse:
        route = self._router.route(resource, request.method)
        api = self._template.apis[self._router.routes(resource)[0].api_id]
        # A method no route has has no bucket: it reaches the MISSING_AUTHENTICATION_TOKEN answer below.
        if not self._throttle.admit(api.logical_id, resource, request.method):
            return self.gateway_response(api, "THROTTLED", "Too Many Requests")
        # With Cors set, SAM gives every path its own OPTIONS method, which wins over ANY.
        if request.method == "OPTIONS" and (route is None or route.method == "ANY") and api.cors is not None:
            return self._preflight(request, resource, api, api.cors)
        if route is None:  # API Gateway's MISSING_AUTHENTICATION_TOKEN (the template maps it to 404 NOT_FOUND)
            return self.gateway_response(api, "MISSING_AUTHENTICATION_TOKEN", f"No route for {request.method}.")
        claims: dict[str, str] | None = None
        if route.authorizer is not None:
            try:
                claims = gateway_claims(claims_from_authorization(request.header("Authorization")))
            except AuthenticationError as error:
                return self._unauthenticated(request, api, error)
        event = rest_event(request, route=route, stage=api.stage_name, path_parameters=path_parameters, claims=claims)
        if len(json.dumps(event).encode()) > MAX_EVENT_BYTES:
            return self.gateway_response(api, "REQUEST_TOO_LARGE", "Request Too Long")
        return self._invoke(api, route, event)

    def body_too_large(self) -> HttpResponse:
        """API Gateway's REQUEST_TOO_LARGE, for a body over MAX_BODY_BYTES (refused before it is read)."""
        return self.gateway_response(self._default_api, "REQUEST_TOO_LARGE", "Request Too Long")

    def gateway_response(self, api: ApiSpec, kind: str, message: str) -> HttpResponse:
        """API Gateway's own answer of type `kind`: the API's GatewayResponses entry for it, else its DEFAULT_4XX or
        DEFAULT_5XX with the type's status, else API Gateway's built-in {"message": ...}."""
        status, default_message = _RESPONSE_TYPES[kind]
        fallback = "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX"
        configured = api.gateway_responses.get(kind) or api.gateway_responses.get(fallback)
        headers = list(configured.headers) if configured else []
        if configured is None or configured.json_template is None:
            body = json.dumps({"message": default_message}).encode()
        else:
            body = (
                configured.json_template.replace("$context.error.messageString", json.dumps(message))
                .replace("$context.error.message", message)
                .encode()
            )
        if configured is not None and configured.status is not None and kind in api.gateway_responses:
            status = configured.status
        return HttpResponse(status, [("Content-Type", "application/json"), *headers], body)

    def _invoke(self, api: ApiSpec, route: ApiRoute, event: dict[str, Any]) -> HttpResponse:
        function = self._template.function(route.function_id)
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = self._host.invoke(function, event)
            except Exception as error:
                outcome["error"] = error

        # The handler runs on while the client gets its 504, as a Lambda function outlives API Gateway's timeout.
        invocation = threading.Thread(target=run, name=f"invoke-{function.logical_id}", daemon=True)
        invocation.start()
        invocation.join(route.timeout_seconds)
        if invocation.is_alive():
            logger.error("%s did not answer within %g s: 504", function.logical_id, route.timeout_seconds)
            return self.gateway_response(api, "INTEGRATION_TIMEOUT", "Endpoint request timed out")
        if "error" in outcome:
            error = outcome["error"]
            logger.error("%s failed", function.logical_id, exc_info=(type(error), error, error.__traceback__))
        else:
            try:
                size = len(json.dumps(outcome["result"]).encode())
                if size <= MAX_RESULT_BYTES:
                    return http_response(outcome["result"])
                logger.error("%s returned %d bytes, past Lambda's %d: 502", function.logical_id, size, MAX_RESULT_BYTES)
            except (MalformedProxyResponse, TypeError, ValueError) as error:
                logger.error("%s returned a malformed proxy response: %s", function.logical_id, error)
        return self.gateway_response(api, "INTEGRATION_FAILURE", "Internal server error")

    def _unauthenticated(self, request: HttpRequest, api: ApiSpec, error: AuthenticationError) -> HttpResponse:
        logger.info("%s %s refused: %s", request.method, request.path, error)
        return self.gateway_response(api, "UNAUTHORIZED", "Unauthorized")

    def _preflight(self, request: HttpRequest, resource: str, api: ApiSpec, cors: CorsRule) -> HttpResponse:
        if api.authorize_preflight and api.default_authorizer is not None:
            try:
                claims_from_authorization(request.header("Authorization"))
            except AuthenticationError as error:
                return self._unauthenticated(request, api, error)
        # SAM's OPTIONS method: the Cors block's AllowMethods, else the path's methods (ANY meaning every one).
        path_methods = {route.method for route in self._router.routes(resource)}
        methods = cors.allow_methods or ",".join(
            sorted(set(ANY_METHODS) if "ANY" in path_methods else path_methods | {"OPTIONS"})
        )
        headers = [("Access-Control-Allow-Origin", cors.allow_origin), ("Access-Control-Allow-Methods", methods)]
        if cors.allow_headers:
            headers.append(("Access-Control-Allow-Headers", cors.allow_headers))
        if cors.max_age:
            headers.append(("Access-Control-Max-Age", cors.max_age))
        if cors.allow_credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return HttpResponse(200, [("Content-Type", "application/json"), *headers], b"{}\n")  # SAM's mock template

    def _local(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/_local/info":
            if request.method != "GET":
                return error_response(405, "METHOD_NOT_ALLOWED", "Use GET.")
            return json_response(
                200,
                {
                    "dynamodbEndpoint": self._dynamodb_endpoint,
                    "tables": self._template.table_names,
                    # Where to read a queue (its dead letters, say) with any SQS client: the endpoint and each URL.
                    "sqsEndpoint": self._sqs_endpoint,
                    "queues": {queue.logical_id: queue.url for queue in self._template.queues},
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
