"""Matches request paths against the template's API resource paths, as API Gateway REST does."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from devserver.template import ApiRoute


@dataclass(frozen=True)
class _CompiledPath:
    resource: str
    pattern: re.Pattern[str]
    # API Gateway prefers the most specific resource: literal segments beat {param}, which beats {proxy+}.
    specificity: tuple[int, int]


def _compile(resource: str) -> _CompiledPath:
    literal_segments = 0
    greedy = 0
    parts = []
    for segment in resource.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("+}"):
            parts.append(f"(?P<{segment[1:-2]}>.+)")
            greedy += 1
        elif segment.startswith("{") and segment.endswith("}"):
            parts.append(f"(?P<{segment[1:-1]}>[^/]+)")
        else:
            parts.append(re.escape(segment))
            literal_segments += 1
    return _CompiledPath(resource, re.compile("^/" + "/".join(parts) + "$"), (-greedy, literal_segments))


class Router:
    def __init__(self, routes: Iterable[ApiRoute]) -> None:
        self._routes_by_resource: dict[str, list[ApiRoute]] = {}
        for route in routes:
            self._routes_by_resource.setdefault(route.path, []).append(route)
        self._paths = sorted(
            (_compile(resource) for resource in self._routes_by_resource),
            key=lambda compiled: compiled.specificity,
            reverse=True,
        )

    def resource_for(self, path: str) -> tuple[str, dict[str, str]] | None:
        """The resource path that serves `path` and its path parameters (URL-decoded), if any."""
        for compiled in self._paths:
            match = compiled.pattern.match(path)
            if match:
                return compiled.resource, {name: unquote(value) for name, value in match.groupdict().items()}
        return None

    def routes(self, resource: str) -> list[ApiRoute]:
        return list(self._routes_by_resource[resource])

    def route(self, resource: str, method: str) -> ApiRoute | None:
        """The route of `resource` for `method` (or its ANY route); None: 405."""
        for route in self._routes_by_resource[resource]:
            if route.method in (method, "ANY"):
                return route
        return None
