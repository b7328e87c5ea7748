"""Ticketline's local development server: the SAM template's API, functions, tables and schedules
run on this machine with no AWS account and no Docker (`python -m devserver`)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = PROJECT_ROOT / "template.yaml"
