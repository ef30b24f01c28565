"""``airflow muxly db migrate|downgrade|check``: Muxly's migrations on ``[muxly] sql_alchemy_conn``.

The same migrations ``airflow db migrate`` runs through the DB manager, for a Muxly database that is managed
on its own (or to downgrade it, which ``airflow db downgrade`` never does).
"""

from __future__ import annotations

import argparse


def migrate(args: argparse.Namespace) -> None:
    """Create or upgrade Muxly's tables (``--to-revision``, ``--show-sql-only``).

    :param args: parsed arguments of ``airflow muxly db migrate``
    """
    from muxly_provider import settings
    from muxly_provider.db import migrate as migrations

    url = settings.sql_alchemy_conn()
    revision = args.to_revision or "heads"
    migrations.upgrade(url, revision=revision, sql=args.show_sql_only)
    if not args.show_sql_only:
        print(f"Muxly's database {_where(url)} is at revision {migrations.current_revision(url) or 'base'}")


def downgrade(args: argparse.Namespace) -> None:
    """Downgrade Muxly's tables to ``--to-revision`` after a confirmation (skipped with ``-y``).

    :param args: parsed arguments of ``airflow muxly db downgrade``
    """
    from muxly_provider import settings
    from muxly_provider.db import migrate as migrations

    url = settings.sql_alchemy_conn()
    if not args.show_sql_only and not args.yes:
        answer = input(
            f"Downgrade Muxly's database {_where(url)} to revision {args.to_revision}? Tables and their data "
            "that the revisions created are dropped; back the database up first. Proceed? (y/n) "
        )
        if answer.strip().upper() != "Y":
            raise SystemExit("Cancelled")
    migrations.downgrade(url, args.to_revision, sql=args.show_sql_only)
    if not args.show_sql_only:
        print(f"Muxly's database {_where(url)} is at revision {migrations.current_revision(url) or 'base'}")


def check(args: argparse.Namespace) -> None:
    """Exit 0 when Muxly's database is at the newest revision, else print why and exit 1.

    :param args: parsed arguments of ``airflow muxly db check`` (none)
    """
    from muxly_provider import settings
    from muxly_provider.db import migrate as migrations

    url = settings.sql_alchemy_conn()
    current = migrations.current_revision(url)
    head = migrations.head_revision()
    if migrations.is_up_to_date(url):
        print(f"Muxly's database {_where(url)} is at the newest revision {head}")
        return
    print(
        f"Muxly's database {_where(url)} is at revision {current or 'base (no Muxly tables)'}, "
        f"the newest is {head}: run 'airflow db migrate' or 'airflow muxly db migrate'"
    )
    raise SystemExit(1)


def _where(url: str) -> str:
    from muxly_provider import settings
    from muxly_provider.db.migrate import masked_url

    schema = settings.db_schema(url)
    return f"{masked_url(url)} (schema {schema})" if schema else masked_url(url)
