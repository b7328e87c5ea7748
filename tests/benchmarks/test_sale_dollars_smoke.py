"""CI smoke version of the scale benchmark's dollars (issue 14): a sale of 5,000 buyers under the server's
`retryAfterSeconds` and the rule before it. The line items add up to the sale; the REST and HTTP API figures come
from the same requests and differ only in the gateway's price and the JWT verified in the functions; Cognito's
calls follow the token lifetime."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import dollars, scale

RULES = [rule for rule in scale.RULES if rule.name in (scale.NEW_RULE, "2 s + 1 s / 50 places")]
MODEL = scale.SaleModel(buyers=5_000, capacity=50, seats=500, admission_seconds=60)


@pytest.fixture(scope="module")
def sale() -> dict[str, Any]:
    return {rule["rule"]: rule for rule in scale.run_cadence(MODEL, RULES)["rules"]}


def test_the_line_items_add_up_to_the_sale_and_its_shares(sale: dict[str, Any]) -> None:
    for figures in sale.values():
        money = figures["dollars"]
        assert set(money["sale_items"]) == {"api_gateway", "lambda", "dynamodb", "cloudwatch_logs", "xray"}
        assert all(value > 0 for value in money["sale_items"].values()), money["sale_items"]
        assert sum(money["sale_items"].values()) == pytest.approx(money["sale"], abs=1e-3)
        assert sum(money["per_million_tickets_items"].values()) == pytest.approx(money["per_million_tickets"], abs=0.03)
        assert money["per_ticket"] * figures["tickets"] == pytest.approx(money["sale"], abs=0.01)
        assert money["per_buyer"] * MODEL.buyers == pytest.approx(money["sale"], abs=0.01)
        assert money["sale_with_waf"] > money["sale"]


def test_rest_and_http_are_priced_from_the_same_requests(sale: dict[str, Any]) -> None:
    savings = {}
    for name, figures in sale.items():
        money, types = figures["dollars"], figures["dollars"]["api_types"]
        requests = sum(route["requests"] for route in figures["routes"].values())
        assert types["requests"] == requests
        rest, http = types["REST API"], types["HTTP API"]
        assert rest["api_gateway"] == pytest.approx(money["sale_items"]["api_gateway"], abs=0.01)
        assert rest["api_gateway"] == pytest.approx(requests * dollars.PRICES["api_gateway_rest_per_million"] / 1e6)
        assert http["api_gateway"] == pytest.approx(requests * dollars.PRICES["api_gateway_http_per_million"] / 1e6)
        assert rest["sale"] == pytest.approx(money["sale"], abs=0.01)
        assert 0 < http["jwt_in_function"] < 0.01 * http["sale"]  # well under a millisecond of CPU per request
        gateway_gap = requests * 2.5 / 1e6
        assert types["saving"] == pytest.approx(gateway_gap - http["jwt_in_function"], abs=1e-5)
        # WAF: on the REST stage directly; an HTTP API only behind CloudFront, whose requests are billed too.
        assert rest["sale_with_waf"] - rest["sale"] == pytest.approx(requests * 0.6 / 1e6, abs=1e-5)
        assert http["sale_with_waf"] - http["sale"] == pytest.approx(requests * 1.6 / 1e6, abs=1e-5)
        savings[name] = types["saving"]
    # More polls, more to save: the rule before issue 14 makes several times the requests.
    assert savings["2 s + 1 s / 50 places"] > 3 * savings[scale.NEW_RULE]


def test_cognito_calls_follow_the_id_tokens_lifetime(sale: dict[str, Any]) -> None:
    identity = sale[scale.NEW_RULE]["identity"]
    default_hour, template_default, ahead = identity["plans"]
    assert default_hour["id_token_minutes"] == 60 < template_default["id_token_minutes"]
    assert template_default["refreshes_in_line_per_buyer"] < default_hour["refreshes_in_line_per_buyer"]
    for plan in identity["plans"]:
        assert plan["calls_per_buyer"] == pytest.approx(1 + plan["refreshes_in_line_per_buyer"], abs=1e-3)
        assert plan["refreshes_after_sold_out_per_buyer"] <= plan["refreshes_in_line_per_buyer"]
        assert plan["busiest_minute_per_second"] <= plan["peak_per_second"]
    # Refreshing ahead spreads the opening's calls over hours: its busiest second is far below the join's.
    assert ahead["busiest_minute_per_second"] * 3 < template_default["busiest_minute_per_second"]
    assert identity["buyers"] == MODEL.buyers * scale.SCALE_UP
    assert identity["mau_dollars"] == dollars.mau_dollars(identity["buyers"])


def test_the_per_user_price_follows_cognitos_tiers() -> None:
    assert dollars.mau_dollars(10_000) == {"essentials": 0.0, "lite": 0.0}
    assert dollars.mau_dollars(110_000) == {"essentials": 1_500.0, "lite": 90_000 * 0.0055 + 10_000 * 0.0046}
