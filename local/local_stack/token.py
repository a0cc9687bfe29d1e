"""Print a test token for the local API: ``python -m local_stack.token --user u1 [--admin]``.

The token is accepted by the local stack's API server only (see :mod:`local_stack.auth`);
send it as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from local_stack.auth import ADMIN_GROUP, DEFAULT_TTL_S, mint_token
from recsys.events import ID_PATTERN

_USER_ID = re.compile(ID_PATTERN)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and print one token; 2 on a user id the API would refuse."""
    parser = argparse.ArgumentParser(description="Mint a token for the local API.")
    parser.add_argument("--user", required=True, help="user id, the token's sub claim")
    parser.add_argument("--admin", action="store_true", help="put the user in the admin group")
    parser.add_argument(
        "--ttl", type=int, default=DEFAULT_TTL_S, help=f"seconds of validity ({DEFAULT_TTL_S})"
    )
    arguments = parser.parse_args(argv)

    if not _USER_ID.match(arguments.user):
        print("error: a user id is 1 to 64 of A-Z a-z 0-9 _ . : @ -", file=sys.stderr)
        return 2
    if arguments.ttl <= 0:
        print("error: --ttl must be a positive number of seconds", file=sys.stderr)
        return 2
    groups = (ADMIN_GROUP,) if arguments.admin else ()
    print(mint_token(arguments.user, groups, ttl_s=arguments.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
