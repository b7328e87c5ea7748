"""Prints a local user JWT: `python -m devserver.token --user alice [--admin] [--ttl 3600]`."""

import argparse

from devserver.auth import DEV_SECRET_ENV, mint_token


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devserver.token",
        description=f"Mint a user token for the local API (HS256, signed with ${DEV_SECRET_ENV}).",
    )
    parser.add_argument("--user", required=True, help="the user id (the token's sub)")
    parser.add_argument("--admin", action="store_true", help="put the user in the admin group")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until the token expires")
    parser.add_argument("--email", help="the email claim (default <user>@example.com)")
    arguments = parser.parse_args(argv)
    print(mint_token(arguments.user, admin=arguments.admin, ttl_seconds=arguments.ttl, email=arguments.email))


if __name__ == "__main__":
    main()
