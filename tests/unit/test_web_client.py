"""The demo page (web/app.js) has a message for every error code the API can answer."""

from __future__ import annotations

import re

from tests.conftest import ROOT
from tests.unit.test_openapi import error_registry


def test_every_api_error_code_has_a_message_in_the_demo_page() -> None:
    source = (ROOT / "web" / "app.js").read_text()
    table = source[source.index("const ERROR_HELP = {") : source.index("};", source.index("const ERROR_HELP = {"))]
    handled = set(re.findall(r"^\s+([A-Z_]+):", table, flags=re.MULTILINE))
    expected = set(error_registry()) | {"INTERNAL_ERROR"}
    assert expected - handled == set(), "add these codes to ERROR_HELP in web/app.js"
