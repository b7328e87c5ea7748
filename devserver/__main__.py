"""`python -m devserver`: the whole Ticketline API on this machine (see --help). Every option also reads
an environment variable (TICKETLINE_PORT, TICKETLINE_WORKERS, ...), the option winning."""

import argparse
import os
import sys
from pathlib import Path

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


def _env_list(name: str) -> list[str]:
    return os.environ.get(name, "").split()


def _parser() -> argparse.ArgumentParser:
    environ = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m devserver",
        description="Serve template.yaml's API locally: DynamoDB Local, the same handlers, the scheduler.",
    )
    parser.add_argument("--host", default=environ("TICKETLINE_HOST", "127.0.0.1"), help="[TICKETLINE_HOST]")
    parser.add_argument(
        "--port", type=int, default=environ("TICKETLINE_PORT", "3000"), help="0 picks a free port [TICKETLINE_PORT]"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=environ("TICKETLINE_WORKERS", "4"),
        help="processes serving requests in parallel [TICKETLINE_WORKERS]",
    )
    parser.add_argument(
        "--parameter-overrides",
        nargs="+",
        default=_env_list("TICKETLINE_PARAMETER_OVERRIDES"),
        metavar="KEY=VALUE",
        help="template parameters, as sam deploy takes them [TICKETLINE_PARAMETER_OVERRIDES, space-separated]",
    )
    parser.add_argument(
        "--expiry-rate",
        type=float,
        default=environ("TICKETLINE_EXPIRY_RATE"),
        metavar="SECONDS",
        help=f"run the {EXPIRY_EVENT} schedule event every SECONDS [TICKETLINE_EXPIRY_RATE]",
    )
    parser.add_argument(
        "--admission-rate",
        type=float,
        default=environ("TICKETLINE_ADMISSION_RATE"),
        metavar="SECONDS",
        help=f"run the {ADMISSION_EVENT} schedule event every SECONDS [TICKETLINE_ADMISSION_RATE]",
    )
    parser.add_argument(
        "--schedule-rate",
        action="append",
        default=_env_list("TICKETLINE_SCHEDULE_RATES"),
        metavar="EVENT=SECONDS",
        help="run any schedule event at another rate (repeatable) [TICKETLINE_SCHEDULE_RATES, space-separated]",
    )
    parser.add_argument(
        "--no-scheduler",
        action="store_true",
        default=environ("TICKETLINE_NO_SCHEDULER", "").lower() in ("1", "true", "yes"),
        help="no timer; POST /_local/schedules/{event} still runs an event [TICKETLINE_NO_SCHEDULER=1]",
    )
    parser.add_argument(
        "--dynamodb-endpoint",
        default=environ("TICKETLINE_DYNAMODB_ENDPOINT"),
        metavar="URL",
        help="use this running DynamoDB engine instead of starting one [TICKETLINE_DYNAMODB_ENDPOINT]",
    )
    parser.add_argument(
        "--template",
        type=Path,
        default=environ("TICKETLINE_TEMPLATE", str(DEFAULT_TEMPLATE)),
        help="[TICKETLINE_TEMPLATE]",
    )
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
