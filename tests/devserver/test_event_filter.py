"""Lambda's FilterCriteria as the local stream poller applies them, and the template's stream event read."""

from pathlib import Path

import pytest

from devserver import DEFAULT_TEMPLATE
from devserver.event_filter import PatternError, matches, parse_pattern
from devserver.template import TemplateError, load_template

RECORD = {
    "eventName": "MODIFY",
    "dynamodb": {"Keys": {"SK": {"S": "SEAT#00001"}}, "NewImage": {"status": {"S": "HELD"}}},
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"eventName": ["MODIFY"]}, True),
        ({"eventName": ["INSERT", "MODIFY"]}, True),  # a list: any one value
        ({"eventName": ["INSERT"]}, False),
        ({"dynamodb": {"Keys": {"SK": {"S": [{"prefix": "SEAT#"}]}}}}, True),
        ({"dynamodb": {"Keys": {"SK": {"S": [{"prefix": "RES"}]}}}}, False),
        ({"dynamodb": {"NewImage": {"status": {"S": [{"anything-but": ["FREE"]}]}}}}, True),
        ({"dynamodb": {"NewImage": {"status": {"S": [{"anything-but": ["HELD"]}]}}}}, False),
        ({"dynamodb": {"OldImage": {"status": {"S": ["FREE"]}}}}, False),  # no OldImage: nothing to match
        ({"dynamodb": {"OldImage": [{"exists": False}]}}, True),
        ({"dynamodb": {"NewImage": [{"exists": True}]}}, True),
        ({"eventName": ["MODIFY"], "dynamodb": {"Keys": {"SK": {"S": ["SEAT#00002"]}}}}, False),  # every key must
    ],
)
def test_patterns_match_as_lambda_does(pattern: dict, expected: bool) -> None:
    assert matches(pattern, RECORD) is expected


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "{}",
        '{"eventName": "MODIFY"}',  # values go in a list
        '{"eventName": []}',
        '{"dynamodb": {"NewImage": {"price": {"N": [{"numeric": [">", 0]}]}}}}',  # not supported locally
    ],
)
def test_patterns_the_local_server_cannot_apply_are_refused(text: str) -> None:
    with pytest.raises(PatternError):
        parse_pattern(text)


def test_the_template_stream_event_is_read_with_its_filters() -> None:
    (stream,) = load_template(DEFAULT_TEMPLATE).streams
    assert (stream.function_id, stream.table_id) == ("SeatAvailabilityFunction", "TicketlineTable")
    assert stream.starting_position == "TRIM_HORIZON" and stream.maximum_retry_attempts == 5
    assert stream.batch_size == 1000 and stream.batching_window_seconds == 1
    assert len(stream.filters) == 3  # to FREE, from FREE, HELD -> SOLD


@pytest.mark.parametrize("position", ["AT_TIMESTAMP", "trim_horizon"])
def test_a_starting_position_a_dynamodb_stream_lacks_is_refused_when_the_template_loads(
    position: str, tmp_path: Path
) -> None:
    text = DEFAULT_TEMPLATE.read_text()
    assert text.count("StartingPosition: TRIM_HORIZON") == 1
    (tmp_path / "template.yaml").write_text(
        text.replace("StartingPosition: TRIM_HORIZON", f"StartingPosition: {position}")
    )

    with pytest.raises(TemplateError, match=f"SeatAvailabilityFunction.*StartingPosition '{position}'"):
        load_template(tmp_path / "template.yaml")
