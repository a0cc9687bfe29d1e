"""Local test tokens: what the local API accepts in place of the user pool's ID tokens."""

from __future__ import annotations

import base64
import json

import pytest

from local_stack import token as token_cli
from local_stack.auth import (
    InvalidTokenError,
    authorizer_claims,
    bearer_token,
    mint_token,
    verify_token,
)

NOW = 1_800_000_000.0


def _forged(payload: dict[str, object], alg: str) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': alg, 'typ': 'JWT'})}.{part(payload)}."


def test_minted_token_verifies_to_its_claims() -> None:
    # GIVEN a token minted for an admin
    token = mint_token("u1", ("admin",), ttl_s=60, now=NOW)

    # WHEN it is verified within its lifetime
    payload = verify_token(token, now=NOW + 30)

    # THEN its claims are those of a Cognito ID token of that user
    assert payload["sub"] == "u1"
    assert payload["cognito:groups"] == ["admin"]
    assert payload["token_use"] == "id"


def test_token_of_a_user_in_no_group_has_no_groups_claim() -> None:
    # GIVEN a token minted without groups
    token = mint_token("u1", now=NOW)

    # WHEN it is verified
    payload = verify_token(token, now=NOW)

    # THEN the claim is absent, as Cognito leaves it out
    assert "cognito:groups" not in payload


def test_expired_token_is_refused() -> None:
    # GIVEN a token valid for 60 seconds
    token = mint_token("u1", ttl_s=60, now=NOW)

    # WHEN it is verified at its expiry
    # THEN it is refused
    with pytest.raises(InvalidTokenError, match="expired"):
        verify_token(token, now=NOW + 60)


def test_token_signed_with_another_secret_is_refused() -> None:
    # GIVEN a token signed with a secret the server does not hold
    token = mint_token("u1", secret=b"someone else's", now=NOW)

    # WHEN it is verified
    # THEN the signature does not match
    with pytest.raises(InvalidTokenError, match="signature"):
        verify_token(token, now=NOW)


def test_unsigned_token_is_refused() -> None:
    # GIVEN a token that claims the "none" algorithm and carries no signature
    token = _forged({"sub": "admin", "exp": NOW + 60}, alg="none")

    # WHEN it is verified
    # THEN it is refused for its algorithm
    with pytest.raises(InvalidTokenError, match="HS256"):
        verify_token(token, now=NOW)


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "!!!.???.***", "x" * 9000])
def test_malformed_token_is_refused(token: str) -> None:
    # GIVEN text that is not a well-formed token
    # WHEN it is verified
    # THEN it is refused, never raising anything else
    with pytest.raises(InvalidTokenError):
        verify_token(token, now=NOW)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("abc", "abc")],
)
def test_bearer_scheme_is_optional(header: str, expected: str) -> None:
    # GIVEN an Authorization header with or without the Bearer scheme
    # WHEN its token is taken
    # THEN it is the token alone
    assert bearer_token(header) == expected


def test_missing_header_is_refused() -> None:
    # GIVEN no Authorization header
    # WHEN its token is taken
    # THEN it is refused
    with pytest.raises(InvalidTokenError):
        bearer_token(None)


def test_claims_are_passed_on_as_api_gateway_strings() -> None:
    # GIVEN a verified payload with a list and times
    payload = verify_token(mint_token("u1", ("admin", "ops"), ttl_s=60, now=NOW), now=NOW)

    # WHEN it becomes authorizer claims
    claims = authorizer_claims(payload)

    # THEN every value is a string: groups comma-joined, times as dates
    assert claims["cognito:groups"] == "admin,ops"
    assert claims["exp"] == "Fri Jan 15 08:01:00 UTC 2027"
    assert all(isinstance(value, str) for value in claims.values())


def test_cli_prints_a_token_the_server_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the token command for an admin
    # WHEN it runs
    status = token_cli.main(["--user", "u1", "--admin"])

    # THEN it prints one valid token of that admin
    printed = capsys.readouterr().out.strip()
    assert status == 0
    assert verify_token(printed)["cognito:groups"] == ["admin"]


def test_cli_refuses_a_user_id_the_api_would_refuse(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a user id with a space
    # WHEN the token command runs
    status = token_cli.main(["--user", "not valid"])

    # THEN it prints no token and exits 2
    assert status == 2
    assert capsys.readouterr().out == ""
