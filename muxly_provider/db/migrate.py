"""Alembic migrations of Muxly's database: the one place that runs them.

``airflow db migrate`` (through :class:`muxly_provider.db.manager.MuxlyDBManager`), ``airflow muxly db ...`` and
the test fixtures all call these functions. They always run the real revisions of the top-level ``migrations/``
folder (shipped in the wheel as ``muxly_provider/migrations``), never ``metadata.create_all``, so a database
created today and one upgraded over many releases end up with the same schema.

``url=None`` means Muxly's setting ``[muxly] sql_alchemy_conn`` (see :func:`muxly_provider.settings.sql_alchemy_conn`).
On PostgreSQL the tables and the version table ``alembic_version_muxly`` live in ``[muxly] db_schema``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

import muxly_provider
from muxly_provider import settings
from muxly_provider.exceptions import MuxlyError

log = logging.getLogger(__name__)

VERSION_TABLE = "alembic_version_muxly"
"""Muxly's Alembic version table (Airflow's is ``alembic_version``)."""


def migrations_dir() -> Path:
    """The folder of Muxly's Alembic environment.

    ``muxly_provider/migrations`` in an installed wheel; the repository's top-level ``migrations/`` in an
    editable (development) install.
    """
    package_dir = Path(muxly_provider.__file__).resolve().parent
    for candidate in (package_dir / "migrations", package_dir.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise MuxlyError(f"Muxly's migrations are missing: no env.py in {package_dir / 'migrations'}")


def _script_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()).replace("%", "%%"))
    return config


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration that migrates Muxly's database at ``url``.

    env.py reads the URL from ``sqlalchemy.url`` and the PostgreSQL schema from ``attributes["schema"]``.

    :param url: SQLAlchemy URL of Muxly's database (default: ``[muxly] sql_alchemy_conn``)
    """
    url = url or settings.sql_alchemy_conn()
    config = _script_config()
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["schema"] = settings.db_schema(url)
    return config


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and messages)."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (``None``: a server, in memory, or a ``file:`` URI)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    if parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


@contextmanager
def _connect(url: str) -> Iterator[Connection]:
    # NullPool: migrations and revision probes are rare, and a pooled connection would keep a SQLite file open.
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _current_heads(url: str) -> tuple[str, ...]:
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return ()  # do not create an empty SQLite file just to read its revision
    with _connect(url) as connection:
        context = MigrationContext.configure(
            connection,
            opts={"version_table": VERSION_TABLE, "version_table_schema": settings.db_schema(url)},
        )
        return tuple(context.get_current_heads())


def current_revision(url: str | None = None) -> str | None:
    """The revision Muxly's database is at, ``None`` before the first migration.

    :param url: SQLAlchemy URL of Muxly's database (default: ``[muxly] sql_alchemy_conn``)
    """
    heads = _current_heads(url or settings.sql_alchemy_conn())
    if len(heads) > 1:
        raise MuxlyError(f"Muxly's database has several Alembic heads: {', '.join(heads)}")
    return heads[0] if heads else None


def head_revision() -> str:
    """The newest revision of Muxly's migrations."""
    head = ScriptDirectory.from_config(_script_config()).get_current_head()
    if head is None:
        raise MuxlyError(f"Muxly's migrations in {migrations_dir()} have no revision")
    return head


def is_up_to_date(url: str | None = None) -> bool:
    """Whether Muxly's database is at the newest revision.

    :param url: SQLAlchemy URL of Muxly's database (default: ``[muxly] sql_alchemy_conn``)
    """
    script_heads = set(ScriptDirectory.from_config(_script_config()).get_heads())
    return set(_current_heads(url or settings.sql_alchemy_conn())) == script_heads


def _offline_start(url: str) -> str | None:
    """The revision offline SQL starts from: the database's when it can be read, else ``None`` (base)."""
    try:
        return current_revision(url)
    except Exception as exc:  # offline SQL must work without a reachable database
        log.warning("Cannot read the revision of Muxly's database (%s); the SQL starts from base", exc)
        return None


def _target(action: str, url: str) -> str:
    schema = settings.db_schema(url)
    where = f"{masked_url(url)} (schema {schema})" if schema else masked_url(url)
    log.info("%s Muxly's database %s", action, where)
    return where


def upgrade(url: str | None = None, revision: str = "heads", sql: bool = False) -> None:
    """Upgrade Muxly's database to ``revision``; a database already there is left untouched.

    :param url: SQLAlchemy URL of Muxly's database (default: ``[muxly] sql_alchemy_conn``)
    :param revision: target revision (``heads`` for the newest), or ``from:to`` with ``sql``
    :param sql: print the SQL (Alembic offline mode) instead of running it; it starts from the database's
        current revision when it can be read
    """
    url = url or settings.sql_alchemy_conn()
    config = alembic_config(url)
    if sql:
        if ":" not in revision and (start := _offline_start(url)):
            revision = f"{start}:{revision}"
        command.upgrade(config, revision, sql=True)
        return
    where = _target("Migrating", url)
    if revision in ("head", "heads") and is_up_to_date(url):
        log.info("Muxly's database %s is already at revision %s", where, head_revision())
        return
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        command.upgrade(config, revision)
    except CommandError as exc:
        raise MuxlyError(
            f"Cannot migrate Muxly's database {where} to {revision!r}: {exc}. A revision this version of "
            "airflow-provider-muxly does not know usually means the database was migrated by a newer version."
        ) from exc
    log.info("Muxly's database %s is at revision %s", where, current_revision(url))


def downgrade(url: str | None, revision: str, sql: bool = False) -> None:
    """Downgrade Muxly's database to ``revision`` (``base`` removes every Muxly table).

    :param url: SQLAlchemy URL of Muxly's database (``None``: ``[muxly] sql_alchemy_conn``)
    :param revision: target revision, or ``from:to`` with ``sql``
    :param sql: print the SQL (Alembic offline mode) instead of running it; it starts from the database's
        current revision when it can be read, else from the newest revision
    """
    url = url or settings.sql_alchemy_conn()
    config = alembic_config(url)
    if sql:
        if ":" not in revision:
            revision = f"{_offline_start(url) or head_revision()}:{revision}"
        command.downgrade(config, revision, sql=True)
        return
    where = _target("Downgrading", url)
    try:
        command.downgrade(config, revision)
    except CommandError as exc:
        raise MuxlyError(f"Cannot downgrade Muxly's database {where} to {revision!r}: {exc}") from exc
    log.info("Muxly's database %s is at revision %s", where, current_revision(url) or "base")
