"""Reads template.yaml into what the local server runs: functions, API routes, schedules and tables.

The template is the only description of routes and table schemas: nothing here names a Ticketline
function, path or table, so resources added to the template later are served without changes. The SAM
translator reads it as `sam deploy` does (Globals, policy templates, SimpleTables); intrinsics are resolved
here, to the local stack's names.
"""

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import cfn_tools

from devserver import iam
from devserver.event_filter import Pattern, PatternError, parse_pattern

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "123456789012"
LOCAL_STACK_NAME = "ticketline-local"
# SAM's name for the API it creates for Api events that name no RestApiId.
IMPLICIT_API_ID = "ServerlessRestApi"
# The S3 bucket of the code the translator is given: local folders go through it as keys (see _translate).
_LOCAL_CODE_BUCKET = "local"

_PSEUDO_PARAMETERS = {
    "AWS::Region": LOCAL_REGION,
    "AWS::AccountId": LOCAL_ACCOUNT_ID,
    "AWS::StackName": LOCAL_STACK_NAME,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
# API Gateway REST's integration timeout unless the event's TimeoutInMillis says otherwise.
DEFAULT_INTEGRATION_TIMEOUT_SECONDS = 29.0
# Every method's default in an API's MethodSettings (SAM: ResourcePath "/*", HttpMethod "*").
ANY_RESOURCE = "/*"
ANY_METHOD = "*"
_RATE_EXPRESSION = re.compile(r"^rate\(\s*(\d+)\s+(second|minute|hour|day)s?\s*\)$")
_SECONDS_PER_UNIT = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


class TemplateError(ValueError):
    """The template (or a parameter override) cannot be run locally as written."""


class _Unresolvable(Exception):
    """An intrinsic whose value only exists in a deployed stack (an ARN, a GetAtt, a condition)."""


@dataclass(frozen=True)
class _Resolver:
    # What `!Ref <name>` means locally (parameters, pseudo parameters, e.g. a table's logical id -> its local table
    # name), and `!GetAtt <resource>.<attribute>` by "<resource>.<attribute>" (e.g. a queue's local ARN).
    values: Mapping[str, str]

    def text(self, value: Any) -> str:
        """The value as the string CloudFormation would produce; raises _Unresolvable."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        if isinstance(value, dict) and len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self._value(argument)
            if function == "Fn::Sub":
                return self._sub(argument)
            if function == "Fn::GetAtt":
                return self._value(argument if isinstance(argument, str) else ".".join(argument))
            if function == "Fn::Join":
                delimiter, parts = argument
                return str(delimiter).join(self.text(part) for part in parts)
        raise _Unresolvable(value)

    def text_or_empty(self, value: Any) -> str:
        try:
            return self.text(value)
        except _Unresolvable:
            return ""

    def tree(self, value: Any) -> Any:
        """Resolves every intrinsic inside a nested structure (e.g. a table's Properties)."""
        if isinstance(value, dict):
            if len(value) == 1 and next(iter(value)) in ("Ref", "Fn::Sub", "Fn::Join", "Fn::GetAtt"):
                return self.text(value)
            return {key: self.tree(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.tree(item) for item in value]
        return value

    def _value(self, name: Any) -> str:
        if name in self.values:
            return self.values[name]
        raise _Unresolvable(name)

    def _sub(self, argument: Any) -> str:
        template, variables = (argument, {}) if isinstance(argument, str) else argument

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} is CloudFormation's escape for a literal ${Literal}
                return "${" + name[1:] + "}"
            if name in variables:
                return self.text(variables[name])
            return self._value(name)  # ${Resource.Attribute} too

        return re.sub(r"\$\{([^}]+)\}", substitute, template)


@dataclass(frozen=True)
class ApiRoute:
    function_id: str
    event_name: str
    api_id: str
    path: str  # the template's resource path, e.g. /concerts/{concertId}/queue/tokens
    method: str  # upper case; ANY matches every method
    authorizer: str | None  # None: public (Auth: {Authorizer: NONE}, or an API without authorizer)
    timeout_seconds: float = DEFAULT_INTEGRATION_TIMEOUT_SECONDS  # the event's TimeoutInMillis, else API Gateway's 29 s


@dataclass(frozen=True, kw_only=True)
class FunctionEvent:
    """One of a function's Events: a schedule, a stream or a queue."""

    function_id: str
    name: str

    @property
    def qualified_name(self) -> str:
        return f"{self.function_id}.{self.name}"


@dataclass(frozen=True, kw_only=True)
class ScheduleEvent(FunctionEvent):
    expression: str  # resolved, e.g. "rate(5 minutes)"
    input: Any  # the parsed Input JSON; None: EventBridge sends its own "Scheduled Event" envelope
    enabled: bool

    @property
    def rate_seconds(self) -> float | None:
        """Seconds between runs, or None for expressions other than rate(...) (e.g. cron)."""
        match = _RATE_EXPRESSION.match(self.expression.strip())
        if match is None:
            return None
        return int(match.group(1)) * _SECONDS_PER_UNIT[match.group(2)]


@dataclass(frozen=True, kw_only=True)
class EventSourceMapping(FunctionEvent):
    """What Lambda's event source mapping does alike for a stream and a queue: it hands the function batches."""

    batch_size: int
    batching_window_seconds: float
    # FunctionResponseTypes: [ReportBatchItemFailures]: the function names the records that failed. A stream's batch
    # is delivered again from the first of them (an invalid answer fails the whole batch); of a queue's, only those
    # come back and the others are deleted (without it, any failure brings the whole batch back).
    reports_item_failures: bool = False


StartingPosition = Literal["TRIM_HORIZON", "LATEST"]  # a DynamoDB stream's (AT_TIMESTAMP is Kinesis's and Kafka's)


@dataclass(frozen=True, kw_only=True)
class StreamEvent(EventSourceMapping):
    """A DynamoDB event: the function reads the stream of one of the template's tables."""

    table_id: str  # logical id of the table whose stream it reads
    starting_position: StartingPosition
    maximum_retry_attempts: int | None  # None: retry until the records expire (Lambda's default)
    filters: tuple[Pattern, ...]  # FilterCriteria: a record is delivered when any one matches; none: all are


@dataclass(frozen=True, kw_only=True)
class QueueEvent(EventSourceMapping):
    """An SQS event: Lambda's event source mapping long-polls the queue and hands the function its messages."""

    queue_id: str  # logical id of the template's queue it reads
    enabled: bool


@dataclass(frozen=True)
class QueueSpec:
    """An AWS::SQS::Queue of the template, named as CloudFormation names it in the local stack."""

    logical_id: str
    name: str
    attributes: Mapping[str, str]  # CreateQueue's Attributes (RedrivePolicy as JSON, with the DLQ's local ARN)
    dead_letter_queue_id: str | None

    @property
    def fifo(self) -> bool:
        return self.attributes.get("FifoQueue") == "true"

    @property
    def arn(self) -> str:
        return queue_arn(self.name)

    @property
    def url(self) -> str:
        """The queue's URL as `!Ref` gives it on AWS; the SQS endpoint the client uses decides where it is served."""
        return f"https://sqs.{LOCAL_REGION}.amazonaws.com/{LOCAL_ACCOUNT_ID}/{self.name}"


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:{name}"


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str  # e.g. app.lambda_handler
    environment: Mapping[str, str]
    memory_mb: int
    timeout_seconds: int
    routes: tuple[ApiRoute, ...]
    schedules: tuple[ScheduleEvent, ...]
    streams: tuple[StreamEvent, ...]
    queue_events: tuple[QueueEvent, ...]
    layer_dirs: tuple[Path, ...]  # source folders of the function's layers, importable as on Lambda
    role: iam.RolePolicy  # its execution role, as the translated template gives it (devserver/iam.py)

    @property
    def handler_file(self) -> Path:
        module_path, _ = self.handler.rsplit(".", 1)
        return self.code_dir.joinpath(*module_path.split(".")).with_suffix(".py")

    @property
    def handler_attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass(frozen=True)
class CorsRule:
    """An API's Cors block, with the quotes that API Gateway mapping expressions need removed."""

    allow_origin: str
    allow_headers: str | None
    allow_methods: str | None  # None: SAM lists the path's own methods
    max_age: str | None
    allow_credentials: bool


@dataclass(frozen=True)
class ThrottleLimit:
    """A token bucket of API Gateway's stage throttling: `rate_per_second` refills it, `burst` is its size."""

    rate_per_second: float
    burst: int


@dataclass(frozen=True)
class GatewayResponse:
    """One of the API's GatewayResponses: what API Gateway sends instead of its own default for a refusal."""

    status: int | None  # None: the response type's own status
    headers: tuple[tuple[str, str], ...]  # the quotes of the mapping expressions removed
    json_template: str | None  # ResponseTemplates' application/json


@dataclass(frozen=True)
class ApiSpec:
    logical_id: str
    stage_name: str
    cors: CorsRule | None
    default_authorizer: str | None
    authorize_preflight: bool  # SAM's AddDefaultAuthorizerToCorsPreflight (true unless set false)
    # MethodSettings' throttling by (resource path, method); (ANY_RESOURCE, ANY_METHOD) is every method's default.
    throttles: Mapping[tuple[str, str], ThrottleLimit] = field(default_factory=dict)
    gateway_responses: Mapping[str, GatewayResponse] = field(default_factory=dict)  # by response type

    def throttle_for(self, path: str, method: str) -> ThrottleLimit | None:
        """API Gateway's limit for one method: its own setting, else the stage's default. None: unthrottled."""
        for key in ((path, method), (ANY_RESOURCE, method), (ANY_RESOURCE, ANY_METHOD)):
            if key in self.throttles:
                return self.throttles[key]
        return None


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    create_kwargs: Mapping[str, Any]  # keyword arguments of DynamoDB CreateTable
    time_to_live: Mapping[str, Any] | None  # TimeToLiveSpecification of UpdateTimeToLive

    @property
    def name(self) -> str:
        return str(self.create_kwargs["TableName"])


@dataclass(frozen=True)
class Template:
    path: Path
    parameters: Mapping[str, str]
    functions: tuple[FunctionSpec, ...]
    apis: Mapping[str, ApiSpec]
    tables: tuple[TableSpec, ...]
    queues: tuple[QueueSpec, ...] = ()

    @property
    def routes(self) -> list[ApiRoute]:
        return [route for function in self.functions for route in function.routes]

    @property
    def schedules(self) -> list[ScheduleEvent]:
        return [schedule for function in self.functions for schedule in function.schedules]

    @property
    def streams(self) -> list[StreamEvent]:
        return [stream for function in self.functions for stream in function.streams]

    @property
    def queue_events(self) -> list[QueueEvent]:
        return [event for function in self.functions for event in function.queue_events]

    def queue(self, logical_id: str) -> QueueSpec:
        return next(queue for queue in self.queues if queue.logical_id == logical_id)

    @property
    def environment_names(self) -> frozenset[str]:
        """Every variable some function of the template declares."""
        return frozenset(name for function in self.functions for name in function.environment)

    @property
    def table_names(self) -> dict[str, str]:
        return {table.logical_id: table.name for table in self.tables}

    def function(self, logical_id: str) -> FunctionSpec:
        return next(function for function in self.functions if function.logical_id == logical_id)

    def schedule(self, name: str) -> ScheduleEvent:
        """A schedule event by its name (`Admit`), or by `Function.Event` when names repeat."""
        found = [schedule for schedule in self.schedules if name in (schedule.name, schedule.qualified_name)]
        if len(found) != 1:
            raise KeyError(name)
        return found[0]


def load_template(path: Path, parameter_overrides: Mapping[str, str] | None = None) -> Template:
    document = cfn_tools.load_yaml(path.read_text())  # short-form intrinsics (`!Ref X`) in their long form
    resources: dict[str, Any] = document.get("Resources") or {}
    parameters = _parameter_values(document.get("Parameters") or {}, parameter_overrides or {})
    # Functions, roles, layers and tables (SimpleTables too) are read as CloudFormation, in the template's order;
    # APIs as SAM resources with their Globals merged; events as written.
    sam_resources, translated = translate(document, parameters)
    in_order = {logical_id: translated[logical_id] for logical_id in resources if logical_id in translated}

    local_values = _PSEUDO_PARAMETERS | parameters
    tables = tuple(
        _table(logical_id, resource.get("Properties") or {}, _Resolver(local_values))
        for logical_id, resource in in_order.items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    )
    queues = _queues(resources, _Resolver(local_values))
    local_values |= {table.logical_id: table.name for table in tables} | _queue_values(queues)
    functions_by_id = {
        logical_id: resource for logical_id, resource in in_order.items() if resource["Type"] == "AWS::Lambda::Function"
    }
    resolver = _Resolver(local_values | {name: name for name in functions_by_id})
    apis = _apis(sam_resources, resolver)
    roles = _roles(translated, functions_by_id, local_values, tables)
    layer_dirs = {
        logical_id: path.parent / resource["Properties"]["Content"]["S3Key"]
        for logical_id, resource in translated.items()
        if resource["Type"] == "AWS::Lambda::LayerVersion"
        and resource["Properties"]["Content"].get("S3Bucket") == _LOCAL_CODE_BUCKET
    }
    functions = tuple(
        _function(
            logical_id,
            properties=resource["Properties"],
            events=resources[logical_id]["Properties"].get("Events") or {},
            apis=apis,
            layer_dirs=layer_dirs,
            template_dir=path.parent,
            resolver=resolver,
            role=roles[logical_id],
        )
        for logical_id, resource in functions_by_id.items()
    )
    return Template(path=path, parameters=parameters, functions=functions, apis=apis, tables=tables, queues=queues)


def translate(document: Mapping[str, Any], parameters: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The template's resources as the SAM translator reads them (SAM resources with their Globals merged, the
    implicit API added) and as it writes them for CloudFormation (roles with policy templates such as
    DynamoDBCrudPolicy expanded, SimpleTables as tables), intrinsics unresolved.

    Kept in a file of the temporary directory per template, parameters and translator version: importing and
    running the translator is ~1.5 s, which every process that loads the template would otherwise pay.
    """
    document_json, parameters_json = json.dumps(document, sort_keys=True), json.dumps(parameters, sort_keys=True)
    digest = hashlib.sha256(
        "\n".join([document_json, parameters_json, LOCAL_REGION, version("aws-sam-translator")]).encode()
    ).hexdigest()[:32]
    cached = Path(tempfile.gettempdir()) / f"ticketline-sam-{digest}.json"
    try:
        sam_resources, resources = json.loads(cached.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        sam_resources, resources = _translate(json.loads(document_json), parameters)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps([sam_resources, resources]), encoding="utf-8")
        partial.replace(cached)  # atomic: a concurrent reader sees the whole file or none
    return sam_resources, resources


def _translate(document: dict[str, Any], parameters: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    import logging

    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # feature-toggle chatter
    # The translator wants code in S3 (sam build uploads it): each local folder goes through as a key of a bucket
    # of ours, which reads back as the function's or the layer's folder.
    function_globals = (document.get("Globals") or {}).get("Function") or {}
    code_uris = [(function_globals, "CodeUri")]
    for resource in document.get("Resources", {}).values():
        properties = resource.setdefault("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function":
            properties.pop("InlineCode", None)
            properties.setdefault("Runtime", "python3.13")  # the translator wants one; nothing here reads it
            if "CodeUri" not in function_globals:
                properties.setdefault("CodeUri", ".")
            code_uris.append((properties, "CodeUri"))
        elif resource.get("Type") == "AWS::Serverless::LayerVersion":
            code_uris.append((properties, "ContentUri"))
    for properties, key in code_uris:
        if isinstance(properties.get(key), str):
            properties[key] = f"s3://{_LOCAL_CODE_BUCKET}/{properties[key]}"
    translator = Translator(
        managed_policy_map=None, sam_parser=Parser(), boto_session=boto3.session.Session(region_name=LOCAL_REGION)
    )
    try:
        translated = translator.translate(document, parameter_values=dict(parameters))
    except InvalidDocumentException as error:
        raise iam.PolicyError(f"the SAM translator refuses the template: {error}") from error
    return document["Resources"], translated["Resources"]  # its plugins merged the Globals into the document


def create_tables(dynamodb_client: Any, template: Template) -> None:
    """Creates the template's tables (and their TTL settings); tables that already exist are kept."""
    for table in template.tables:
        try:
            dynamodb_client.create_table(**table.create_kwargs)
        except dynamodb_client.exceptions.ResourceInUseException:
            continue
        if table.time_to_live is not None:
            dynamodb_client.update_time_to_live(TableName=table.name, TimeToLiveSpecification=dict(table.time_to_live))


def create_queues(sqs_client: Any, template: Template) -> None:
    """Creates the template's queues, each dead-letter queue before the queues that redrive to it."""
    created: set[str] = set()
    pending = list(template.queues)
    while pending:
        ready = [q for q in pending if q.dead_letter_queue_id is None or q.dead_letter_queue_id in created]
        if not ready:
            raise TemplateError(f"queues redriving in a circle: {', '.join(q.logical_id for q in pending)}")
        for queue in ready:
            sqs_client.create_queue(QueueName=queue.name, Attributes=dict(queue.attributes))
            created.add(queue.logical_id)
            pending.remove(queue)


def _parameter_values(declared: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"parameter override for undeclared parameter(s): {', '.join(unknown)}")
    values: dict[str, str] = {}
    for name, declaration in declared.items():
        if name in overrides:
            values[name] = overrides[name]
        elif "Default" in (declaration or {}):
            values[name] = _Resolver(_PSEUDO_PARAMETERS).text(declaration["Default"])
        else:
            raise TemplateError(f"parameter {name} has no Default: pass --parameter-overrides {name}=VALUE")
    return values


def _function(
    logical_id: str,
    *,
    properties: Mapping[str, Any],
    events: Mapping[str, Any],
    apis: Mapping[str, ApiSpec],
    layer_dirs: Mapping[str, Path],
    template_dir: Path,
    resolver: _Resolver,
    role: iam.RolePolicy,
) -> FunctionSpec:
    variables = (properties.get("Environment") or {}).get("Variables") or {}
    routes: list[ApiRoute] = []
    schedules: list[ScheduleEvent] = []
    streams: list[StreamEvent] = []
    queue_events: list[QueueEvent] = []
    for event_name, event in events.items():
        event_type = event.get("Type")
        event_properties = event.get("Properties") or {}
        if event_type == "Api":
            routes.append(_route(logical_id, event_name, event_properties, apis, resolver))
        elif event_type in ("Schedule", "ScheduleV2"):
            schedules.append(_schedule(logical_id, event_name, event_type, event_properties, resolver))
        elif event_type == "DynamoDB":
            streams.append(_stream(logical_id, event_name, event_properties, resolver))
        elif event_type == "SQS":
            queue_events.append(_queue_event(logical_id, event_name, event_properties, resolver))
    return FunctionSpec(
        logical_id=logical_id,
        code_dir=template_dir / properties["Code"]["S3Key"],
        handler=resolver.text(properties["Handler"]),
        environment={name: resolver.text_or_empty(value) for name, value in variables.items()},
        memory_mb=int(resolver.text(properties.get("MemorySize", 128))),
        timeout_seconds=int(resolver.text(properties.get("Timeout", 3))),
        routes=tuple(routes),
        schedules=tuple(schedules),
        streams=tuple(streams),
        queue_events=tuple(queue_events),
        # Layers given as ARNs (published elsewhere) have no local source: their imports must be in the venv.
        layer_dirs=tuple(
            layer_dirs[layer["Ref"]]
            for layer in properties.get("Layers") or []
            if isinstance(layer, dict) and layer.get("Ref") in layer_dirs
        ),
        role=role,
    )


def _roles(
    translated: Mapping[str, Any],
    functions: Mapping[str, Any],
    local_values: Mapping[str, str],
    tables: tuple["TableSpec", ...],
) -> dict[str, iam.RolePolicy]:
    """Each function's role as the SAM translator writes it, its DynamoDB and SQS statements resolved to local ARNs."""
    table_arns = {table.logical_id: iam.table_arn(LOCAL_REGION, LOCAL_ACCOUNT_ID, table.name) for table in tables}
    resolver = _Resolver(
        dict(local_values)
        | {f"{logical_id}.Arn": arn for logical_id, arn in table_arns.items()}
        | {f"{logical_id}.StreamArn": f"{arn}/stream/local" for logical_id, arn in table_arns.items()}
    )
    roles = {}
    for function_id, function in functions.items():
        role = function["Properties"].get("Role")
        role_id = role.get("Fn::GetAtt", [None])[0] if isinstance(role, dict) else None
        if role_id is None or role_id not in translated:
            raise iam.PolicyError(
                f"{function_id}: its Role is not a role of this template; the local server cannot know it"
            )
        role_properties = translated[role_id]["Properties"]
        statements: list[iam.Statement] = []
        for policy in role_properties.get("Policies") or []:
            raw_statements = policy["PolicyDocument"].get("Statement") or []
            for raw in [raw_statements] if isinstance(raw_statements, dict) else raw_statements:
                if not iam.may_grant_checked_action(raw):
                    continue  # logs, X-Ray, ...: not requests this server checks
                try:
                    resolved = resolver.tree(raw)
                except _Unresolvable as error:
                    raise TemplateError(
                        f"{function_id}: a policy resource is not a table or queue of this template: {error}"
                    ) from error
                statements.append(iam.statement(resolved))
        for arn in role_properties.get("ManagedPolicyArns") or []:
            statements.extend(iam.managed_statements(resolver.text(arn)))
        roles[function_id] = iam.RolePolicy(
            function_id=function_id, role_name=f"{LOCAL_STACK_NAME}-{role_id}", statements=tuple(statements)
        )
    return roles


def _route(
    function_id: str, event_name: str, properties: Mapping[str, Any], apis: Mapping[str, ApiSpec], resolver: _Resolver
) -> ApiRoute:
    api_reference = properties.get("RestApiId")
    api_id = api_reference["Ref"] if isinstance(api_reference, dict) else IMPLICIT_API_ID
    authorizer = (properties.get("Auth") or {}).get("Authorizer", apis[api_id].default_authorizer)
    timeout_millis = properties.get("TimeoutInMillis")
    return ApiRoute(
        function_id=function_id,
        event_name=event_name,
        api_id=api_id,
        path=resolver.text(properties["Path"]),
        method=resolver.text(properties["Method"]).upper(),
        authorizer=None if authorizer in (None, "NONE") else str(authorizer),
        timeout_seconds=DEFAULT_INTEGRATION_TIMEOUT_SECONDS
        if timeout_millis is None
        else int(resolver.text(timeout_millis)) / 1000,
    )


def _schedule(
    function_id: str, event_name: str, event_type: str, properties: Mapping[str, Any], resolver: _Resolver
) -> ScheduleEvent:
    expression_key = "Schedule" if event_type == "Schedule" else "ScheduleExpression"
    raw_input = properties.get("Input")
    state = resolver.text(properties.get("State", "ENABLED"))
    return ScheduleEvent(
        function_id=function_id,
        name=event_name,
        expression=resolver.text(properties[expression_key]),
        input=None if raw_input is None else json.loads(resolver.text(raw_input)),
        enabled=properties.get("Enabled", True) is not False and state.upper() == "ENABLED",
    )


def _stream(function_id: str, event_name: str, properties: Mapping[str, Any], resolver: _Resolver) -> StreamEvent:
    where = f"{function_id}.{event_name}"
    table_id = _attribute_of(
        where, "Stream", properties.get("Stream"), "table", attributes=("StreamArn", "LatestStreamArn")
    )
    retries = properties.get("MaximumRetryAttempts")
    try:
        filters = tuple(
            parse_pattern(resolver.text(entry["Pattern"]))
            for entry in (properties.get("FilterCriteria") or {}).get("Filters") or []
        )
    except PatternError as error:
        raise TemplateError(f"{where}: {error}") from error
    return StreamEvent(
        function_id=function_id,
        name=event_name,
        table_id=table_id,
        starting_position=_starting_position(where, resolver.text(properties["StartingPosition"])),
        batch_size=int(resolver.text(properties.get("BatchSize", 100))),
        batching_window_seconds=float(resolver.text(properties.get("MaximumBatchingWindowInSeconds", 0))),
        maximum_retry_attempts=None if retries in (None, -1) else int(resolver.text(retries)),
        filters=filters,
        reports_item_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
    )


def _starting_position(where: str, value: str) -> StartingPosition:
    match value:
        case "TRIM_HORIZON" | "LATEST":
            return value
    raise TemplateError(f"{where}: StartingPosition {value!r} is not one of a DynamoDB stream (TRIM_HORIZON, LATEST)")


def _queue_event(function_id: str, event_name: str, properties: Mapping[str, Any], resolver: _Resolver) -> QueueEvent:
    return QueueEvent(
        function_id=function_id,
        name=event_name,
        queue_id=_attribute_of(f"{function_id}.{event_name}", "Queue", properties.get("Queue"), "queue"),
        batch_size=int(resolver.text(properties.get("BatchSize", 10))),
        batching_window_seconds=float(resolver.text(properties.get("MaximumBatchingWindowInSeconds", 0))),
        enabled=properties.get("Enabled", True) is not False,
        reports_item_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
    )


def _attribute_of(
    where: str, key: str, reference: Any, kind: str, *, attributes: tuple[str, ...] = ("Arn",), known: Any = None
) -> str:
    """X of `key: !GetAtt X.<attribute>`, which must name a table or queue of this template (one of `known`)."""
    attribute = reference.get("Fn::GetAtt") if isinstance(reference, dict) else None
    if not (isinstance(attribute, list) and len(attribute) == 2 and attribute[1] in attributes) or (
        known is not None and attribute[0] not in known
    ):
        raise TemplateError(f"{where}: {key} must be !GetAtt <{kind}>.{attributes[0]} of a {kind} in this template")
    return str(attribute[0])


# The queue properties CreateQueue takes as attributes (the rest, e.g. encryption and tags, change nothing locally).
_QUEUE_ATTRIBUTES = (
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "MaximumMessageSize",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
)


def _queues(resources: Mapping[str, Any], resolver: _Resolver) -> tuple[QueueSpec, ...]:
    declared = {
        logical_id: resource.get("Properties") or {}
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::SQS::Queue"
    }

    def name(logical_id: str) -> str:
        # CloudFormation names a queue <stack>-<logical id>-<suffix>, with ".fifo" for a FIFO queue.
        properties = declared[logical_id]
        if "QueueName" in properties:
            return resolver.text(properties["QueueName"])
        fifo = resolver.text(properties.get("FifoQueue", False)) == "true"
        return f"{LOCAL_STACK_NAME}-{logical_id}" + (".fifo" if fifo else "")

    queues = []
    for logical_id, properties in declared.items():
        attributes = {key: resolver.text(properties[key]) for key in _QUEUE_ATTRIBUTES if key in properties}
        dead_letter_queue_id = None
        redrive = properties.get("RedrivePolicy")
        if redrive is not None:
            target = redrive.get("deadLetterTargetArn")
            dead_letter_queue_id = _attribute_of(logical_id, "deadLetterTargetArn", target, "queue", known=declared)
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": queue_arn(name(dead_letter_queue_id)),
                    "maxReceiveCount": int(resolver.text(redrive["maxReceiveCount"])),
                }
            )
        queues.append(QueueSpec(logical_id, name(logical_id), attributes, dead_letter_queue_id))
    return tuple(queues)


def _queue_values(queues: tuple[QueueSpec, ...]) -> dict[str, str]:
    """`!Ref <queue>` (its URL) and `!GetAtt <queue>.Arn / .QueueName / .QueueUrl` in the local stack."""
    return {queue.logical_id: queue.url for queue in queues} | {
        f"{queue.logical_id}.{attribute}": value
        for queue in queues
        for attribute, value in (("Arn", queue.arn), ("QueueName", queue.name), ("QueueUrl", queue.url))
    }


def _apis(sam_resources: Mapping[str, Any], resolver: _Resolver) -> dict[str, ApiSpec]:
    declared = {
        logical_id: resource.get("Properties") or {}
        for logical_id, resource in sam_resources.items()
        if resource.get("Type") == "AWS::Serverless::Api"
    }
    declared.setdefault(IMPLICIT_API_ID, {"StageName": "Prod"})  # the translator adds it only for events that use it
    return {logical_id: _api(logical_id, properties, resolver) for logical_id, properties in declared.items()}


def _api(logical_id: str, properties: Mapping[str, Any], resolver: _Resolver) -> ApiSpec:
    auth = properties.get("Auth") or {}
    return ApiSpec(
        logical_id=logical_id,
        stage_name=resolver.text_or_empty(properties.get("StageName", "Prod")),
        cors=_cors(properties.get("Cors"), resolver),
        default_authorizer=auth.get("DefaultAuthorizer"),
        authorize_preflight=auth.get("AddDefaultAuthorizerToCorsPreflight", True) is not False,
        throttles=_throttles(properties.get("MethodSettings") or [], resolver),
        gateway_responses={
            kind: _gateway_response(response or {}, resolver)
            for kind, response in (properties.get("GatewayResponses") or {}).items()
        },
    )


def _throttles(method_settings: list[Mapping[str, Any]], resolver: _Resolver) -> dict[tuple[str, str], ThrottleLimit]:
    """MethodSettings' throttling; a setting that names only one of rate and burst keeps the default's other."""
    declared = {
        (
            _resource_path(resolver.text(setting.get("ResourcePath", ANY_RESOURCE))),
            resolver.text(setting.get("HttpMethod", ANY_METHOD)).upper(),
        ): setting
        for setting in method_settings
    }
    default = declared.get((ANY_RESOURCE, ANY_METHOD), {})
    throttles = {}
    for key, setting in declared.items():
        rate = setting.get("ThrottlingRateLimit", default.get("ThrottlingRateLimit"))
        burst = setting.get("ThrottlingBurstLimit", default.get("ThrottlingBurstLimit"))
        if rate is not None and burst is not None:
            throttles[key] = ThrottleLimit(float(resolver.text(rate)), int(resolver.text(burst)))
    return throttles


def _resource_path(setting_path: str) -> str:
    """A MethodSettings ResourcePath as the route's path: "/~1concerts~1{id}" is "/" + "/concerts/{id}" with each
    "/" escaped as "~1" (and "~" as "~0"), as a JSON pointer does; "/*" is every resource."""
    if setting_path == ANY_RESOURCE:
        return ANY_RESOURCE
    return setting_path.removeprefix("/").replace("~1", "/").replace("~0", "~")


def _gateway_response(response: Mapping[str, Any], resolver: _Resolver) -> GatewayResponse:
    status = response.get("StatusCode")
    headers = (response.get("ResponseParameters") or {}).get("Headers") or {}
    json_template = (response.get("ResponseTemplates") or {}).get("application/json")
    return GatewayResponse(
        status=None if status is None else int(resolver.text(status)),
        headers=tuple((name, resolver.text(value).strip("'")) for name, value in headers.items()),
        json_template=None if json_template is None else resolver.text(json_template),
    )


def _cors(cors: Any, resolver: _Resolver) -> CorsRule | None:
    if cors is None:
        return None
    settings = {"AllowOrigin": cors} if not isinstance(cors, dict) else cors

    def unquoted(key: str) -> str | None:
        value = settings.get(key)
        return None if value is None else resolver.text(value).strip("'")

    return CorsRule(
        allow_origin=unquoted("AllowOrigin") or "*",
        allow_headers=unquoted("AllowHeaders"),
        allow_methods=unquoted("AllowMethods"),
        max_age=unquoted("MaxAge"),
        allow_credentials=settings.get("AllowCredentials") is True,
    )


def _table(logical_id: str, declared: Mapping[str, Any], resolver: _Resolver) -> TableSpec:
    def resolved(key: str) -> Any:
        # Only the properties that shape the local table are resolved: SSE keys, tags and the like may hold
        # intrinsics (KMS ARNs) that exist only in a deployed stack.
        return resolver.tree(declared.get(key))

    kwargs: dict[str, Any] = {"TableName": resolved("TableName") or logical_id}
    for key in ("AttributeDefinitions", "KeySchema", "LocalSecondaryIndexes", "BillingMode"):
        if key in declared:
            kwargs[key] = resolved(key)
    if "GlobalSecondaryIndexes" in declared:
        kwargs["GlobalSecondaryIndexes"] = [
            _with_numeric_throughput(index) for index in resolved("GlobalSecondaryIndexes")
        ]
    if "ProvisionedThroughput" in declared:
        kwargs["ProvisionedThroughput"] = _numeric_throughput(resolved("ProvisionedThroughput"))
    if "StreamSpecification" in declared:
        # CloudFormation implies StreamEnabled; the CreateTable API wants it said.
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **resolved("StreamSpecification")}
    ttl = resolved("TimeToLiveSpecification")
    time_to_live = (
        None if ttl is None else {"AttributeName": ttl["AttributeName"], "Enabled": ttl.get("Enabled") is not False}
    )
    return TableSpec(logical_id=logical_id, create_kwargs=kwargs, time_to_live=time_to_live)


def _with_numeric_throughput(index: Mapping[str, Any]) -> dict[str, Any]:
    if "ProvisionedThroughput" not in index:
        return dict(index)
    return {**index, "ProvisionedThroughput": _numeric_throughput(index["ProvisionedThroughput"])}


def _numeric_throughput(throughput: Mapping[str, Any]) -> dict[str, int]:
    # Capacities often come from !Ref Number parameters, which resolve to strings.
    return {key: int(value) for key, value in throughput.items()}
