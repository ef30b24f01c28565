"""Muxly's Airflow DB manager: ``airflow db migrate`` also migrates Muxly's tables.

Registered through provider info ``db-managers``. Airflow hands every DB manager a session on *its own*
metadata database, but Muxly's tables live in Muxly's database (``[muxly] sql_alchemy_conn``; a SQLite file in
``AIRFLOW_HOME`` by default while Airflow itself runs on SQLite, see ARCHITECTURE §1; with Airflow on a server
database and no ``[muxly] sql_alchemy_conn``, every operation fails naming the setting). So this manager ignores that session and sends every
operation to :mod:`muxly_provider.db.migrate`, which always runs the real Alembic revisions (never
``metadata.create_all`` plus a stamp).

``supports_table_dropping`` is ``False``: ``airflow db reset`` drops Airflow's tables but keeps Muxly's, which
hold users' configuration (connectors, routes, jobs...). ``airflow db downgrade`` never touches external DB
managers; ``airflow muxly db downgrade`` does that explicitly.
"""

from __future__ import annotations

from typing import Any

from airflow.utils.db_manager import BaseDBManager
from alembic.config import Config

from muxly_provider import settings
from muxly_provider.db import migrate, models

# Computed once when Airflow imports the manager (only ``airflow db ...`` commands do): a path lookup, no I/O
# beyond a stat. Airflow reads ``migration_dir`` on the class to check that env.py passes ``version_table``.
_MIGRATIONS_DIR = migrate.migrations_dir()


class MuxlyDBManager(BaseDBManager):
    """Runs Muxly's Alembic migrations on Muxly's own database from ``airflow db migrate``.

    :param session: a session on Airflow's metadata database, as Airflow passes it; only used to release MySQL
        metadata locks
    """

    metadata = models.metadata
    migration_dir = str(_MIGRATIONS_DIR)
    alembic_file = str(_MIGRATIONS_DIR / "alembic.ini")
    version_table_name = migrate.VERSION_TABLE
    # Never let ``airflow db reset`` drop users' Muxly configuration.
    supports_table_dropping = False
    # Airflow's ``--to-version`` / ``--from-version``: the newest Muxly revision of each provider release.
    revision_heads_map: dict[str, str] = {"0.1.0": "f4a8c2e6d1b9"}  # noqa: RUF012 (typed so by Airflow)

    def _url(self) -> str:
        """Muxly's database URL.

        :raises MuxlyDatabaseSettingError: when Airflow runs on a server database and ``[muxly]
            sql_alchemy_conn`` is unset, or Muxly's SQLite file is Airflow's (``airflow db migrate`` then fails
            with the message naming the setting, before touching any database)
        """
        return settings.sql_alchemy_conn()

    def get_alembic_config(self) -> Config:
        """Alembic configuration on Muxly's database (not Airflow's)."""
        return migrate.alembic_config(self._url())

    def get_current_revision(self) -> str | None:
        """The revision of Muxly's database, ``None`` before the first migration."""
        return migrate.current_revision(self._url())

    def check_migration(self) -> bool:
        """Whether Muxly's database is at the newest revision (``airflow db check-migrations``)."""
        return migrate.is_up_to_date(self._url())

    def create_db_from_orm(self) -> None:
        """Create Muxly's tables by running every revision (Muxly never creates them from the ORM)."""
        self.upgradedb()

    def initdb(self, use_migration_files: bool = False) -> None:
        """Create or upgrade Muxly's tables (``airflow db migrate`` on a new Airflow database).

        :param use_migration_files: accepted for Airflow's signature; Muxly always uses the migration files
        """
        self.upgradedb(use_migration_files=use_migration_files)

    def upgradedb(
        self,
        to_revision: str | None = None,
        from_revision: str | None = None,
        show_sql_only: bool = False,
        use_migration_files: bool = False,
    ) -> None:
        """Upgrade Muxly's tables; a database already at the target revision is left untouched.

        :param to_revision: target revision (default: the newest)
        :param from_revision: start of the printed SQL (only with ``show_sql_only``)
        :param show_sql_only: print the SQL instead of running it
        :param use_migration_files: accepted for Airflow's signature; Muxly always uses the migration files
        """
        url = self._url()
        self._release_metadata_locks_if_needed()
        revision = to_revision or "heads"
        if show_sql_only and from_revision:
            revision = f"{from_revision}:{revision}"
        migrate.upgrade(url, revision=revision, sql=show_sql_only)

    def downgrade(
        self, to_revision: str, from_revision: str | None = None, show_sql_only: bool = False
    ) -> None:
        """Downgrade Muxly's tables to ``to_revision`` (``base`` removes them).

        :param to_revision: target revision
        :param from_revision: start of the printed SQL (only with ``show_sql_only``)
        :param show_sql_only: print the SQL instead of running it
        """
        revision = f"{from_revision}:{to_revision}" if show_sql_only and from_revision else to_revision
        migrate.downgrade(self._url(), revision, sql=show_sql_only)

    def drop_tables(self, connection: Any) -> None:
        """Keep Muxly's tables when Airflow's are dropped (``airflow db reset``).

        :param connection: Airflow's connection, unused
        """
        self.log.info(
            "Keeping Muxly's tables in %s: 'airflow db reset' does not drop them; "
            "'airflow muxly db downgrade --to-revision base' does",
            migrate.masked_url(self._url()),
        )
