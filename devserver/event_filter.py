"""Lambda event filtering (FilterCriteria) for the local stream poller: the part of the pattern syntax
a stream consumer needs. An operator outside it is refused when the template is loaded, not ignored.

https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html
"""

import json
from collections.abc import Mapping
from typing import Any

SUPPORTED_OPERATORS = frozenset({"prefix", "exists", "anything-but"})

Pattern = Mapping[str, Any]


class PatternError(ValueError):
    """A filter pattern the local server cannot apply as Lambda would."""


def parse_pattern(text: str) -> Pattern:
    """A FilterCriteria Pattern (a JSON string), checked for what `matches` can evaluate."""
    try:
        pattern = json.loads(text)
    except json.JSONDecodeError as error:
        raise PatternError(f"filter pattern is not JSON: {error}") from error
    return _checked(pattern, "pattern")


def matches(pattern: Pattern, record: Mapping[str, Any]) -> bool:
    """Every key of the pattern must match the record; a list of values matches when any one does."""
    for key, expected in pattern.items():
        present = key in record
        value = record.get(key)
        if isinstance(expected, Mapping):
            if not (isinstance(value, Mapping) and matches(expected, value)):
                return False
        elif not any(_value_matches(rule, present, value) for rule in expected):
            return False
    return True


def _value_matches(rule: Any, present: bool, value: Any) -> bool:
    if not isinstance(rule, Mapping):
        return present and value == rule
    ((operator, argument),) = rule.items()
    if operator == "exists":
        return present is bool(argument)
    if operator == "prefix":
        return isinstance(value, str) and value.startswith(argument)
    refused = argument if isinstance(argument, list) else [argument]  # anything-but
    return present and value not in refused


def _checked(node: Any, where: str) -> Pattern:
    """`node` when it is a pattern `matches` can evaluate; PatternError otherwise."""
    if not isinstance(node, Mapping) or not node:
        raise PatternError(f"{where}: expected a non-empty object")
    for key, value in node.items():
        if isinstance(value, Mapping):
            _checked(value, f"{where}.{key}")
        elif not isinstance(value, list) or not value:
            raise PatternError(f"{where}.{key}: expected an object or a non-empty list of values")
        else:
            for rule in value:
                if isinstance(rule, Mapping) and (len(rule) != 1 or next(iter(rule)) not in SUPPORTED_OPERATORS):
                    raise PatternError(
                        f"{where}.{key}: {json.dumps(rule)} is not supported locally "
                        f"(supported: exact values, {', '.join(sorted(SUPPORTED_OPERATORS))})"
                    )
    return node
