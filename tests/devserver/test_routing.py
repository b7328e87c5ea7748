from devserver.routing import Router
from devserver.template import ApiRoute


def route(path: str, method: str = "GET") -> ApiRoute:
    return ApiRoute(function_id="F", event_name=path, api_id="Api", path=path, method=method, authorizer=None)


ROUTER = Router(
    [
        route("/concerts/{concertId}"),
        route("/concerts/upcoming"),
        route("/concerts/{concertId}/seats/{seat}", "POST"),
        route("/files/{proxy+}"),
        route("/", "ANY"),
    ]
)


def test_literal_segments_beat_parameters() -> None:
    assert ROUTER.resource_for("/concerts/upcoming") == ("/concerts/upcoming", {})
    assert ROUTER.resource_for("/concerts/c1") == ("/concerts/{concertId}", {"concertId": "c1"})


def test_parameters_are_url_decoded_and_one_segment_each() -> None:
    assert ROUTER.resource_for("/concerts/a%20b/seats/7") == (
        "/concerts/{concertId}/seats/{seat}",
        {"concertId": "a b", "seat": "7"},
    )
    assert ROUTER.resource_for("/concerts/a/b") is None


def test_greedy_proxy_and_root() -> None:
    assert ROUTER.resource_for("/files/a/b.txt") == ("/files/{proxy+}", {"proxy": "a/b.txt"})
    assert ROUTER.resource_for("/") == ("/", {})
    assert ROUTER.resource_for("/nothing") is None


def test_methods() -> None:
    assert ROUTER.route("/concerts/{concertId}", "GET") is not None
    assert ROUTER.route("/concerts/{concertId}", "POST") is None
    assert ROUTER.route("/", "DELETE") is not None  # ANY
