"""``airflow muxly users create|list|set-password``: bootstrap and manage Muxly's local users."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any


def _password(args: argparse.Namespace) -> str:
    """The password from ``--password``, standard input (``--password-stdin``) or a prompt (asked twice)."""
    if getattr(args, "password", None):
        return str(args.password)
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat the password: ") != first:
        sys.exit("The passwords differ.")
    return first


def create_user(args: argparse.Namespace) -> None:
    """Create a local user with roles (``--role admin`` bootstraps an administrator)."""
    from muxly_provider.auth.users import UserError
    from muxly_provider.auth.users import create_user as create
    from muxly_provider.db.engine import session_scope

    password = _password(args)
    try:
        with session_scope() as session:
            user = create(
                session,
                username=args.username,
                email=args.email,
                password=password,
                display_name=args.display_name,
                roles=args.role or [],
            )
            user_id = user.id
    except UserError as exc:
        sys.exit(f"Cannot create user {args.username!r}: {exc.field}: {exc.message}")
    print(
        f"User {args.username!r} created (id {user_id}) with roles: {', '.join(args.role or []) or '(none)'}"
    )


def list_users(args: argparse.Namespace) -> None:
    """Print every user with their roles (never a password hash)."""
    from sqlalchemy import select

    from muxly_provider.auth.permissions import user_role_names
    from muxly_provider.db.engine import session_scope
    from muxly_provider.db.models import User

    with session_scope() as session:
        rows: list[dict[str, Any]] = [
            {
                "id": user.id,
                "username": user.username,
                "email": user.email,
                "auth_provider": user.auth_provider,
                "active": user.is_active,
                "roles": user_role_names(session, user.id),
            }
            for user in session.scalars(select(User).order_by(User.username))
        ]
    if args.output_format == "json":
        print(json.dumps(rows, indent=2))
        return
    from muxly_provider.cli.output import print_table

    print_table(
        ("username", "email", "provider", "active", "roles", "id"),
        [
            (
                str(r["username"]),
                str(r["email"]),
                str(r["auth_provider"]),
                str(r["active"]),
                ",".join(r["roles"]),
                str(r["id"]),
            )
            for r in rows
        ],
    )


def set_password(args: argparse.Namespace) -> None:
    """Set the password of a local user (their sessions end)."""
    from muxly_provider.auth.users import UserError, find_user
    from muxly_provider.auth.users import set_password as change
    from muxly_provider.db.engine import session_scope

    password = _password(args)
    try:
        with session_scope() as session:
            user = find_user(session, args.username)
            if user is None:
                sys.exit(f"No user {args.username!r}.")
            change(session, user, password)
    except UserError as exc:
        sys.exit(f"Cannot set the password of {args.username!r}: {exc.message}")
    print(f"Password of {args.username!r} changed; their sessions were ended.")
