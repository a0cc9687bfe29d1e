"""The caller of a request, read from API Gateway's Cognito authorizer claims."""

import pytest

from recsys.runtime.api import caller_of
from recsys.runtime.http import HttpError


def _event(claims: object) -> dict[str, object]:
    return {"requestContext": {"authorizer": {"claims": claims}}}


@pytest.mark.parametrize(
    ("groups", "is_admin"),
    [
        ("admin", True),
        ("editors,admin", True),
        ("[editors admin]", True),
        ("administrators", False),
        ("", False),
        (None, False),
    ],
)
def test_admin_is_read_from_the_groups_claim(groups: str | None, is_admin: bool) -> None:
    # GIVEN claims of user u1 with a groups claim as API Gateway may pass it
    claims = {"sub": "u1"} if groups is None else {"sub": "u1", "cognito:groups": groups}

    # WHEN the caller is read
    caller = caller_of(_event(claims))

    # THEN the user is u1, an admin only when the admin group is listed
    assert (caller.user_id, caller.is_admin) == ("u1", is_admin)


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"requestContext": {}},
        _event(None),
        _event({"email": "a@example.com"}),
        _event({"sub": "not a valid id"}),
        _event("sub=u1"),
    ],
    ids=["no-context", "no-authorizer", "no-claims", "no-sub", "bad-sub", "claims-not-a-map"],
)
def test_request_without_a_usable_subject_is_unauthenticated(event: dict[str, object]) -> None:
    # GIVEN an event that reached the function without a usable identity
    # WHEN the caller is read
    # THEN it is refused with 401, never served as somebody
    with pytest.raises(HttpError) as refused:
        caller_of(event)
    assert refused.value.status == 401
