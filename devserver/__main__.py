"""`python -m devserver`: the whole Ticketline API on this machine (see --help). Every option also reads
an environment variable (TICKETLINE_PORT, TICKETLINE_WORKERS, ...), the option winning."""

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from devserver import DEFAULT_TEMPLATE
from devserver.dynamodb_local import EngineError
from devserver.schedules import ADMISSION_EVENT, EXPIRY_EVENT
from devserver.server import ServerOptions, serve


def _pairs(values: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, separator, item = value.partition("=")
        if not separator or not key:
            raise SystemExit(f"{what}: expected KEY=VALUE, got {value!r}")
        pairs[key] = item
    return pairs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devserver",
        description="Serve template.yaml's API locally: DynamoDB Local, the same handlers, the scheduler.",
    )

    def option(flag: str, variable: str, default: str | None = None, purpose: str = "", **settings: Any) -> None:
        """An option read from `variable` when not given (lists space-separated, a switch set by 1, true or yes),
        the variable named in its help."""
        value: Any = os.environ.get(variable, default)
        if settings.get("nargs") == "+" or settings.get("action") == "append":
            value, variable = (value or "").split(), f"{variable}, space-separated"
        elif settings.get("action") == "store_true":
            value, variable = (value or "").lower() in ("1", "true", "yes"), f"{variable}=1"
        parser.add_argument(flag, default=value, help=f"{purpose} [{variable}]".lstrip(), **settings)

    option("--host", "TICKETLINE_HOST", "127.0.0.1")
    option("--port", "TICKETLINE_PORT", "3000", "0 picks a free port", type=int)
    option("--workers", "TICKETLINE_WORKERS", "4", "processes serving requests in parallel", type=int)
    option(
        "--parameter-overrides",
        "TICKETLINE_PARAMETER_OVERRIDES",
        purpose="template parameters, as sam deploy takes them",
        nargs="+",
        metavar="KEY=VALUE",
    )
    for flag, variable, event in (
        ("--expiry-rate", "TICKETLINE_EXPIRY_RATE", EXPIRY_EVENT),
        ("--admission-rate", "TICKETLINE_ADMISSION_RATE", ADMISSION_EVENT),
    ):
        option(flag, variable, purpose=f"run the {event} schedule event every SECONDS", type=float, metavar="SECONDS")
    option(
        "--schedule-rate",
        "TICKETLINE_SCHEDULE_RATES",
        purpose="run any schedule event at another rate (repeatable)",
        action="append",
        metavar="EVENT=SECONDS",
    )
    option(
        "--no-scheduler",
        "TICKETLINE_NO_SCHEDULER",
        purpose="no timer; POST /_local/schedules/{event} still runs an event",
        action="store_true",
    )
    option(
        "--dynamodb-endpoint",
        "TICKETLINE_DYNAMODB_ENDPOINT",
        purpose="use this running DynamoDB engine instead of starting one",
        metavar="URL",
    )
    option("--template", "TICKETLINE_TEMPLATE", str(DEFAULT_TEMPLATE), type=Path)
    return parser


def main(argv: list[str] | None = None) -> None:
    arguments = _parser().parse_args(argv)
    schedule_rates = {
        name: float(seconds) for name, seconds in _pairs(arguments.schedule_rate, "--schedule-rate").items()
    }
    if arguments.expiry_rate is not None:
        schedule_rates[EXPIRY_EVENT] = arguments.expiry_rate
    if arguments.admission_rate is not None:
        schedule_rates[ADMISSION_EVENT] = arguments.admission_rate
    if any(seconds <= 0 for seconds in schedule_rates.values()):
        raise SystemExit("schedule rates must be positive numbers of seconds")
    if arguments.workers < 1:
        raise SystemExit("--workers must be at least 1")
    options = ServerOptions(
        host=arguments.host,
        port=arguments.port,
        workers=arguments.workers,
        template_path=arguments.template,
        parameter_overrides=_pairs(arguments.parameter_overrides, "--parameter-overrides"),
        schedule_rates=schedule_rates,
        scheduler=not arguments.no_scheduler,
        dynamodb_endpoint=arguments.dynamodb_endpoint,
    )
    try:
        serve(options)
    except (ValueError, EngineError, OSError) as error:  # ValueError: a bad template, override or fault spec
        print(f"devserver: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
