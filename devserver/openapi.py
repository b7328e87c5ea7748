"""The API's one OpenAPI 3 document: the functions' own Powertools documents, merged.

`python -m devserver.openapi` (`make openapi`) writes docs/openapi.json; `--check` fails when that file is
stale. The local server serves the same document at GET /openapi.json, and Swagger UI at GET /docs.

Every route declares what the document says of it (ticketline.api: `error_responses(...)`, the `QueueToken`
and `IdempotencyKey` headers, its body and return models; CONTRIBUTING.md, "Adding a route"). What no single
resolver knows is added here: one document for the functions of template.yaml (Powertools' OpenAPIMerge), the
bearer scheme and each operation's security from the template's authorizers, and header names as clients send
them; and Powertools' 422 shapes are dropped (unused: our validation errors are 400s, which the routes declare).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devserver import DEFAULT_TEMPLATE, PROJECT_ROOT
from devserver.lambda_host import load_module, temporary_environment
from devserver.template import FunctionSpec, Template, load_template

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.models import Server

DOCUMENT_PATH = PROJECT_ROOT / "docs" / "openapi.json"
SECURITY_SCHEME = "CognitoJWT"
ERROR_SCHEMA = "Error"
_POWERTOOLS_422_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")  # always added
_DESCRIPTION = """\
A fair virtual waiting room in front of a seat-booking and payment API.

**Flow**: join a concert's queue (`POST /concerts/{concertId}/queue/tokens`), poll your position after
`retryAfterSeconds` until your token is `ACTIVE`, then list dates and free seats, hold a seat, top up the
wallet and pay, each with your token in `X-Queue-Token`.

**Identity**: `Authorization: Bearer <JWT>`. On AWS a Cognito user pool ID token (`sub` is the user id, the
group `admin` marks an operator); locally an HS256 token from `make token` (or the demo page).

**Errors**: every error is `{"error": {"code", "message", "details": [{"field", "message"}]}}`; each operation
lists the codes it can answer. 429 and 503 carry `Retry-After`.

**Money** is an integer amount in won; times are ISO-8601 UTC; ids are opaque strings.
"""
_SECURITY_DESCRIPTION = (
    "A Cognito user pool ID token on AWS (API Gateway's Cognito authorizer checks it; `sub` is the user id, group "
    '`admin` marks an operator). Locally an HS256 token: `make token ARGS="--user alice"` or the demo page\'s sign-in.'
)


def build_document(template: Template | None = None) -> dict[str, Any]:
    """The merged OpenAPI document of every API function of the template."""
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    template = template or load_template(DEFAULT_TEMPLATE)
    merge = OpenAPIMerge(
        title="Ticketline API",
        version=_project_version(),
        description=_DESCRIPTION,
        servers=_servers(template),
        security_schemes={SECURITY_SCHEME: HTTPBearer(bearerFormat="JWT", description=_SECURITY_DESCRIPTION)},
        on_conflict="error",
    )
    for function in template.functions:
        if function.routes:
            merge.add_schema(_resolver(function).get_openapi_schema())
    document: dict[str, Any] = json.loads(merge.get_openapi_json_schema())  # validated, plain JSON types
    authorizers = {(route.path, route.method.lower()): route.authorizer for route in template.routes}
    for path, path_item in document["paths"].items():
        for method, operation in path_item.items():
            operation["security"] = [{SECURITY_SCHEME: []}] if authorizers.get((path, method)) else []
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "header":  # Powertools lower-cases Header(alias=...) names
                    parameter["name"] = "-".join(word.capitalize() for word in parameter["name"].split("-"))
    schemas = document["components"]["schemas"]
    document["components"]["schemas"] = {
        name: schemas[name] for name in sorted(schemas) if name not in _POWERTOOLS_422_SCHEMAS
    }
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _project_version() -> str:
    with (PROJECT_ROOT / "pyproject.toml").open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def _servers(template: Template) -> list[Server]:
    from aws_lambda_powertools.event_handler.openapi.models import Server, ServerVariable

    variables = {
        "restApiId": ServerVariable(default="abcdef1234", description="The REST API id (stack output ApiUrl)"),
        "region": ServerVariable(default="us-east-1"),
        "stage": ServerVariable(
            default=template.parameters.get("StageName", "v1"), description="The StageName parameter"
        ),
    }
    aws = "https://{restApiId}.execute-api.{region}.amazonaws.com/{stage}"
    return [
        Server(url="http://127.0.0.1:3000", description="Local server (make run)"),
        Server(url=aws, description="AWS: the stack's ApiUrl output", variables=variables),
    ]


def _resolver(function: FunctionSpec) -> Any:
    """The function's Powertools resolver (`app`), its layers importable and its settings set as on Lambda."""
    with temporary_environment(function.environment):  # its services read their validated settings on import
        return load_module(f"_openapi_{function.logical_id}", function.handler_file, function.layer_dirs).app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devserver.openapi", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DOCUMENT_PATH, help="where to write; - for stdout")
    parser.add_argument("--check", action="store_true", help="fail if the file differs from the generated document")
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    arguments = parser.parse_args(argv)
    text = render(build_document(load_template(arguments.template)))
    if str(arguments.output) == "-":
        sys.stdout.write(text)
        return
    if arguments.check:
        if not arguments.output.exists() or arguments.output.read_text() != text:
            raise SystemExit(f"{arguments.output} is stale: run `make openapi` and commit it")
        print(f"{arguments.output} is up to date")
        return
    arguments.output.write_text(text)
    print(f"wrote {arguments.output}: {sum(len(item) for item in json.loads(text)['paths'].values())} operations")


if __name__ == "__main__":
    main()
