"""Runs the template's handlers inside this process, like one Lambda execution environment per process.

One invocation at a time per process, as Lambda does: a Powertools resolver keeps the current event
on a class attribute, and os.environ (which carries each function's own variables) is process-wide.
Parallelism comes from running several such processes.

Given the template's variable names, a host runs each function as its own Lambda container would: with its own
variables only (what the template gives other functions is unset while it runs, so a variable it needs but lacks
fails here as on AWS) and with its own copy of its layers' modules, so that what a layer caches per process (its
settings, its clients) is the function's own, never another function's.

Each invocation runs under the function's IAM role (devserver/iam.py): a DynamoDB request its role does not
allow fails with AccessDeniedException, as on AWS.
"""

import importlib.util
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from devserver import iam
from devserver.proxy import LambdaContext
from devserver.template import LOCAL_REGION, FunctionSpec, QueueEvent, StreamEvent

logger = logging.getLogger("devserver")

Handler = Callable[[Any, LambdaContext], Any]


class Invoker(Protocol):
    """What an event source needs of a Lambda host: a function invoked with an event, its answer returned."""

    def invoke(self, function: FunctionSpec, event: Any) -> Any: ...


def invoke_batch(
    host: Invoker, function: FunctionSpec, source: StreamEvent | QueueEvent, records: list[Any], ids: list[str]
) -> list[int]:
    """Hands `records` to the function as Lambda's event source mappings do ({"Records": [...]}); the indexes of
    those that failed, in order: none when it returned, every one when it raised. With ReportBatchItemFailures,
    the ones its `batchItemFailures` names by id; every one when Lambda cannot read that answer (not the
    documented shape, or an id not in the batch)."""
    try:
        result = host.invoke(function, {"Records": records})
    except Exception:
        logger.exception("%s failed on its batch of %d records", source.qualified_name, len(records))
        return list(range(len(records)))
    logger.info("%s: %d records -> %s", source.qualified_name, len(records), result)
    failures = result.get("batchItemFailures") if source.reports_item_failures and isinstance(result, dict) else None
    if not failures:  # an empty or null list, or no answer at all: the whole batch succeeded
        return []
    named = [failure.get("itemIdentifier") if isinstance(failure, dict) else None for failure in failures]
    if not all(name in ids for name in named):
        return list(range(len(records)))
    return [index for index, identifier in enumerate(ids) if identifier in named]


class LambdaHost:
    def __init__(
        self, dynamodb_endpoint: str, template_variables: Collection[str] = (), sqs_endpoint: str = ""
    ) -> None:
        """template_variables: every variable the template declares for some function (Template.environment_names);
        sqs_endpoint: the local SQS (devserver/queues.py), "" when the template has no queue."""
        self._dynamodb_endpoint = dynamodb_endpoint
        self._sqs_endpoint = sqs_endpoint
        self._template_variables = frozenset(template_variables)
        self._layer_modules: dict[str, dict[str, ModuleType]] = {}  # function -> its own copies of its layers' modules
        self._invocation_lock = threading.Lock()
        self._handlers: dict[str, Handler] = {}
        # On boto3's default session before any handler (and its client) loads: clients copy the session's hooks.
        self._iam = iam.enforcer()
        # Metrics are disabled locally; Powertools still warns on each call that none were published.
        warnings.filterwarnings("ignore", message="No application metrics to publish")

    def invoke(self, function: FunctionSpec, event: Any) -> Any:
        """Calls the function's handler with `event`; its exceptions propagate to the caller."""
        with (
            self._invocation_lock,
            temporary_environment(
                self._environment(function), unset=self._template_variables - function.environment.keys()
            ),
            self._own_layer_modules(function),
            self._iam.acting_as(function.role),
        ):
            handler = self._handler(function)
            started = time.monotonic()
            result = handler(event, LambdaContext(function))
            elapsed = time.monotonic() - started
            if elapsed > function.timeout_seconds:
                logger.warning(
                    "%s took %.1f s, past its Timeout of %d s: Lambda would have stopped it",
                    function.logical_id,
                    elapsed,
                    function.timeout_seconds,
                )
            return result

    def _environment(self, function: FunctionSpec) -> dict[str, str]:
        """The template's variables for the function, plus what Lambda sets and what differs locally (the engines'
        endpoints: the queue URLs the template gives are AWS's, served by the local SQS at `sqs_endpoint`)."""
        return {
            **function.environment,
            **(
                {"DYNAMODB_ENDPOINT_URL": self._dynamodb_endpoint}
                if "DYNAMODB_ENDPOINT_URL" in function.environment
                else {}
            ),
            **({"SQS_ENDPOINT_URL": self._sqs_endpoint} if self._sqs_endpoint else {}),
            "AWS_LAMBDA_FUNCTION_NAME": function.logical_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_REGION": LOCAL_REGION,
            # No X-Ray daemon and no CloudWatch here: keep traces and EMF metric blobs out of the console.
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }

    @contextmanager
    def _own_layer_modules(self, function: FunctionSpec) -> Iterator[None]:
        """The function's own copies of its layers' modules in sys.modules while it runs (a fresh import the first
        time); another function's copies are set aside, as they live in another container on Lambda."""
        if not self._template_variables:  # no variable names given: one shared set of layer modules
            yield
            return
        roots = tuple(str(layer_dir) + os.sep for layer_dir in function.layer_dirs)

        def layer_modules() -> dict[str, ModuleType]:
            return {
                name: module
                for name, module in list(sys.modules.items())
                if (getattr(module, "__file__", None) or "").startswith(roots)
            }

        for name in layer_modules():
            del sys.modules[name]
        sys.modules.update(self._layer_modules.get(function.logical_id, {}))
        try:
            yield
        finally:
            self._layer_modules[function.logical_id] = layer_modules()

    def wait_until_idle(self, timeout_seconds: float) -> None:
        """Lets a running invocation finish (used before the process exits)."""
        if self._invocation_lock.acquire(timeout=timeout_seconds):
            self._invocation_lock.release()

    def _handler(self, function: FunctionSpec) -> Handler:
        # Loaded on first use, in the process that runs it: module-level boto3 clients must not
        # be created before the server forks. A failed import is retried on the next call.
        if function.logical_id not in self._handlers:
            # Every function's entry is app.py: a unique module name keeps them apart in sys.modules.
            name = f"_devserver_function_{function.logical_id}"
            module = load_module(name, function.handler_file, function.layer_dirs)
            self._handlers[function.logical_id] = getattr(module, function.handler_attribute)
        return self._handlers[function.logical_id]


def load_module(module_name: str, path: Path, layer_dirs: Iterable[Path] = ()) -> ModuleType:
    """The module in `path`, executed afresh under `module_name`, with `layer_dirs` importable for good (as under
    /opt/python on Lambda: handlers may import lazily, long after loading). The one loader of handler files and
    scripts for the local server, the OpenAPI writer and the tests."""
    for layer_dir in layer_dirs:
        if str(layer_dir) not in sys.path:
            sys.path.insert(0, str(layer_dir))
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # before executing it, as the import system does (dataclasses look it up)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


@contextmanager
def temporary_environment(variables: Mapping[str, str], unset: Collection[str] = ()) -> Iterator[None]:
    """`variables` set and `unset` removed from os.environ for the block, then both restored."""
    previous = {name: os.environ.get(name) for name in [*variables, *unset]}
    for name in unset:
        os.environ.pop(name, None)
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
