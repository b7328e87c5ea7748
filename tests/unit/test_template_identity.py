"""template.yaml's identity side (issue 14 item 6): the buyers' app client takes its token lifetimes from parameters
within Cognito's ranges, and the default ID token outlasts the lobby, the longest modelled wait and an ACTIVE turn,
so that a waiter need not refresh (a call on Cognito's UserAuthentication quota) while in line."""

from __future__ import annotations

import json
from typing import Any

import cfn_tools

from tests.conftest import ROOT

TEMPLATE: dict[str, Any] = cfn_tools.load_yaml((ROOT / "template.yaml").read_text())
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
BUYERS_CLIENT: dict[str, Any] = TEMPLATE["Resources"]["UserPoolClient"]["Properties"]
# Cognito's limits per token (AWS::Cognito::UserPoolClient): ID and access tokens 5 minutes to 1 day, refresh
# tokens 60 minutes to 10 years.
COGNITO_RANGES = {
    "IdTokenValidityMinutes": (5, 1440),
    "AccessTokenValidityMinutes": (5, 1440),
    "RefreshTokenValidityDays": (1, 3650),
}


def test_the_buyers_token_lifetimes_are_parameters_in_cognitos_ranges() -> None:
    assert BUYERS_CLIENT["IdTokenValidity"] == {"Ref": "IdTokenValidityMinutes"}
    assert BUYERS_CLIENT["AccessTokenValidity"] == {"Ref": "AccessTokenValidityMinutes"}
    assert BUYERS_CLIENT["RefreshTokenValidity"] == {"Ref": "RefreshTokenValidityDays"}
    assert BUYERS_CLIENT["TokenValidityUnits"] == {
        "IdToken": "minutes",
        "AccessToken": "minutes",
        "RefreshToken": "days",
    }
    for name, (least, most) in COGNITO_RANGES.items():
        parameter = PARAMETERS[name]
        assert (parameter["MinValue"], parameter["MaxValue"]) == (least, most), name
        assert least <= parameter["Default"] <= most, name


def test_the_default_id_token_outlasts_the_lobby_the_longest_modelled_wait_and_a_turn() -> None:
    """The longest wait is the simulated sale's (docs/benchmarks/scale.json): its slowest cadence's sell-out time."""
    scale = json.loads((ROOT / "docs" / "benchmarks" / "scale.json").read_text())
    longest_sale = max(
        rule["sold_out_after_seconds"]
        for cadence in scale["cadences"]
        for rule in cadence["rules"]
        if rule["rule"] == "retryAfterSeconds"
    )
    lobby = 30 * 60  # the contract's PreQueueMinutes default
    needed = lobby + longest_sale + int(PARAMETERS["ActiveTokenTtlSeconds"]["Default"])
    assert PARAMETERS["IdTokenValidityMinutes"]["Default"] * 60 >= needed
