"""Cold start guards (docs/BENCHMARKS.md): what a handler loads at init, and that tracing still covers DynamoDB.

Each check runs in a fresh interpreter in Lambda's environment with tracing on (LAMBDA_TASK_ROOT set), as
benchmarks/coldstart.py measures it: the test process itself has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.coldstart import LAYER_DIR, _environment
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # each probe is a new interpreter importing a handler from scratch

_PROBE = """
import importlib.util, json, sys
sys.path.insert(0, sys.argv[1])
spec = importlib.util.spec_from_file_location("app", sys.argv[2])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
deferred = ("boto3", "botocore.client")
loaded = sorted(name for name in sys.modules if name.startswith(deferred))
models = sorted(name for name in sys.modules if name.startswith("ticketline.models."))
from aws_xray_sdk.core import patcher
from ticketline.db import dynamodb
from ticketline.observability import tracer
dynamodb()
patched = sorted(patcher._PATCHED_MODULES)
print(json.dumps({"loaded": loaded, "models": models, "tracing": not tracer.disabled, "patched": patched}))
"""


def probe(function: str, *, tracing: bool) -> dict[str, object]:
    app = ROOT / "functions" / function / "app.py"
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(LAYER_DIR), str(app)],
        cwd=app.parent,
        env=_environment(Path(app), tracing=tracing),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("function", ["health", "wallet", "pay", "reserve"])
def test_a_handler_loads_without_boto3_or_the_idempotency_utility(function: str) -> None:
    assert probe(function, tracing=True)["loaded"] == []


def test_a_handler_without_models_builds_none_at_its_cold_start() -> None:
    # The API layer itself needs no model (building the catalog's and the queue's took ~30 ms of health's import).
    assert probe("health", tracing=True)["models"] == []


def test_the_dynamodb_client_is_traced_when_tracing_is_on_and_only_botocore_is_patched() -> None:
    traced = probe("wallet", tracing=True)
    assert traced["tracing"] is True
    assert traced["patched"] == ["botocore"]
    untraced = probe("wallet", tracing=False)
    assert untraced["tracing"] is False
    assert untraced["patched"] == []
