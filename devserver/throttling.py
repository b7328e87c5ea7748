"""API Gateway's stage throttling: one token bucket per method, sized by the API's MethodSettings.

API Gateway applies a stage's throttling to each method on its own (the "/*" "*" setting is every method's
default, a method's own setting replaces it): a burst of polls empties the poll's bucket, never the hold's.
The buckets live in shared memory created before the server forks, so every worker process draws from the
same ones, as every API Gateway node draws from one stage.
"""

import multiprocessing
import time

from devserver.template import Template, ThrottleLimit

_FORK = multiprocessing.get_context("fork")
# The methods an ANY route answers (SAM's list), each throttled on its own as on API Gateway.
ANY_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


class Throttle:
    def __init__(self, template: Template) -> None:
        self._index: dict[tuple[str, str, str], int] = {}  # (api id, resource path, method) -> bucket
        limits: list[ThrottleLimit] = []
        for route in template.routes:
            api = template.apis[route.api_id]
            methods = ANY_METHODS if route.method == "ANY" else (route.method, "OPTIONS")
            for method in methods:
                limit = api.throttle_for(route.path, method)
                key = (route.api_id, route.path, method)
                if limit is not None and key not in self._index:
                    self._index[key] = len(limits)
                    limits.append(limit)
        self._limits = tuple(limits)
        self._lock = _FORK.Lock()
        now = time.monotonic()
        # Per bucket: the tokens it holds and when it was last refilled; full at start, as a fresh stage is.
        self._tokens = _FORK.RawArray("d", [float(limit.burst) for limit in limits] or [0.0])
        self._refilled = _FORK.RawArray("d", [now] * len(limits) or [0.0])

    def admit(self, api_id: str, resource: str, method: str) -> bool:
        """Takes one token from the method's bucket; False when it is empty (the request is throttled)."""
        bucket = self._index.get((api_id, resource, method))
        if bucket is None:
            return True
        limit = self._limits[bucket]
        with self._lock:
            now = time.monotonic()
            tokens = min(
                float(limit.burst), self._tokens[bucket] + (now - self._refilled[bucket]) * limit.rate_per_second
            )
            self._refilled[bucket] = now
            if tokens < 1.0:
                self._tokens[bucket] = tokens
                return False
            self._tokens[bucket] = tokens - 1.0
            return True
