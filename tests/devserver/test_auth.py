import jwt
import pytest

from devserver.auth import (
    AuthenticationError,
    claims_from_authorization,
    gateway_claims,
    mint_token,
    verify_token,
)
from devserver.token import deployed_id_token_seconds
from devserver.token import main as token_main


def test_minted_token_verifies() -> None:
    claims = verify_token(mint_token("alice", admin=True))

    assert claims["sub"] == "alice"
    assert claims["cognito:groups"] == ["admin"]
    assert claims["token_use"] == "id"
    assert claims["exp"] > claims["iat"]


def test_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    token = mint_token("alice")
    monkeypatch.setenv("TICKETLINE_DEV_JWT_SECRET", "another-secret")

    with pytest.raises(AuthenticationError, match="invalid"):
        verify_token(token)
    assert verify_token(mint_token("alice"))["sub"] == "alice"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "no Authorization header"),
        ("", "no Authorization header"),
        ("Basic abc", "not 'Bearer <token>'"),
        ("Bearer ", "not 'Bearer <token>'"),
        ("Bearer not-a-jwt", "invalid"),
    ],
)
def test_refusals(header: str | None, reason: str) -> None:
    with pytest.raises(AuthenticationError, match=reason):
        claims_from_authorization(header)


def test_expired_token_is_refused() -> None:
    with pytest.raises(AuthenticationError, match="expired"):
        verify_token(mint_token("alice", ttl_seconds=-10))


def test_sub_and_exp_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "a-secret-of-at-least-thirty-two-bytes"
    monkeypatch.setenv("TICKETLINE_DEV_JWT_SECRET", secret)
    without_sub = jwt.encode({"exp": 4_000_000_000}, secret, algorithm="HS256")
    without_exp = jwt.encode({"sub": "alice"}, secret, algorithm="HS256")

    for token in (without_sub, without_exp):
        with pytest.raises(AuthenticationError, match="invalid"):
            verify_token(token)


def test_other_algorithms_are_refused() -> None:
    unsigned = jwt.encode({"sub": "alice", "exp": 4_000_000_000}, None, algorithm="none")

    with pytest.raises(AuthenticationError):
        verify_token(unsigned)


def test_gateway_claims_are_strings_like_api_gateway_rest() -> None:
    claims = gateway_claims(
        {"sub": "alice", "cognito:groups": ["admin", "staff"], "email_verified": True, "exp": 0, "auth_time": 5}
    )

    assert claims == {
        "sub": "alice",
        "cognito:groups": "admin,staff",
        "email_verified": "true",
        "exp": "Thu Jan 01 00:00:00 UTC 1970",
        "auth_time": "5",
    }
    assert gateway_claims({"cognito:groups": ["admin"]})["cognito:groups"] == "admin"


def test_token_cli(capsys: pytest.CaptureFixture[str]) -> None:
    token_main(["--user", "bob", "--admin", "--ttl", "60"])

    claims = verify_token(capsys.readouterr().out.strip())
    assert claims["sub"] == "bob"
    assert claims["cognito:groups"] == ["admin"]
    assert claims["exp"] - claims["iat"] == 60


def test_token_cli_lives_as_long_as_a_deployed_id_token_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    token_main(["--user", "bob"])

    claims = verify_token(capsys.readouterr().out.strip())
    assert claims["exp"] - claims["iat"] == deployed_id_token_seconds()


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": 10**20},  # PyJWT accepts it (far future); no datetime holds it: it crashed the gateway
        {"exp": 1e300},
        {"exp": 10**400},  # too large for a float: math.isfinite raised OverflowError
        {"exp": "99999999999"},  # PyJWT reads int("...")
        {"exp": True},
        {"iat": 10**30},
        {"iat": -1},
        {"nbf": "0"},
    ],
    ids=repr,
)
def test_date_claims_a_datetime_cannot_hold_are_an_invalid_token(claims: dict[str, object]) -> None:
    import time

    now = int(time.time())
    token = jwt.encode({"sub": "alice", "iat": now, "exp": now + 60} | claims, "local-dev-secret", algorithm="HS256")
    with pytest.raises(AuthenticationError):  # PyJWT's own check (expired, not yet valid) or ours (not a date)
        verify_token(token)
