"""Pydantic models at the API edges: camelCase on the wire, snake_case in Python."""

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

# Our ids in paths and bodies. Here, not beside the models: the API layer's path parameters use it, and a
# handler that imports no model (health) must not pay for building them at its cold start.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


def with_examples(*examples: dict[str, Any]) -> ConfigDict:
    """An API model's model_config with whole-object examples, in wire (camelCase) form: Swagger UI shows them,
    tests/unit/test_openapi.py checks every schema has some. Merged with ApiModel's own config by pydantic."""
    return ConfigDict(json_schema_extra={"examples": list(examples)})
