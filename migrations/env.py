"""Alembic environment of Muxly's migrations.

Run by :mod:`muxly_provider.db.migrate` (``airflow db migrate`` and ``airflow muxly db ...``), and by the
``alembic`` command line (``alembic -c migrations/alembic.ini ...``) when writing a new revision.

The database is, in this order: a connection handed over in ``config.attributes["connection"]``, the
``sqlalchemy.url`` option, Muxly's setting ``[muxly] sql_alchemy_conn``. On PostgreSQL the tables and the
version table live in the schema ``config.attributes["schema"]`` (default ``[muxly] db_schema``), created when
missing. Revisions are schema-less: online they reach the schema through ``schema_translate_map``, offline
(``--sql``) through ``SET LOCAL search_path``.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateSchema

from muxly_provider.db.migrate import VERSION_TABLE
from muxly_provider.db.models import metadata

# Key of the PostgreSQL transaction-level advisory lock that serializes concurrent migrations of Muxly's
# tables (for example two schedulers that run ``airflow db migrate`` at start); "muxly" in ASCII.
PG_MIGRATION_LOCK_KEY = 0x6D75786C79

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or ""
    if url:
        return url
    from muxly_provider import settings

    return settings.sql_alchemy_conn()


def _schema(url: str) -> str | None:
    """The PostgreSQL schema of Muxly's tables; always ``None`` on other databases."""
    if make_url(url).get_backend_name() != "postgresql":
        return None
    if "schema" in config.attributes:
        schema = config.attributes["schema"]
        return str(schema) if schema else None
    from muxly_provider import settings

    return settings.db_schema(url)


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def run_migrations_offline() -> None:
    """Print the SQL of the migrations instead of running it."""
    url = _url()
    schema = _schema(url)
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        render_as_batch=_is_sqlite(url),
    )
    with context.begin_transaction():
        if schema:
            quoted = context.get_context().dialect.identifier_preparer.quote_schema(schema)
            context.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
            context.execute(f"SET LOCAL search_path TO {quoted}")
        context.run_migrations()


def _ensure_schema(connection: Connection, schema: str) -> None:
    # Look before creating: CREATE SCHEMA IF NOT EXISTS still needs the CREATE privilege on the database.
    exists = connection.execute(
        text("SELECT 1 FROM pg_namespace WHERE nspname = :schema"), {"schema": schema}
    ).first()
    if exists is None:
        connection.execute(CreateSchema(schema, if_not_exists=True))


def _run_with(connection: Connection) -> None:
    url = connection.engine.url.render_as_string(hide_password=False)
    schema = _schema(url)
    if schema:
        connection = connection.execution_options(schema_translate_map={None: schema})
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        # SQLite cannot ALTER most things: autogenerate writes batch operations (copy and move) there.
        render_as_batch=_is_sqlite(url),
        compare_server_default=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})
            if schema:
                _ensure_schema(connection, schema)
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a live database."""
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run_with(connection)
        return
    # No SQLite foreign-key pragma here on purpose: with foreign keys on, the table copy of a batch
    # migration would fire ON DELETE CASCADE and empty the child tables.
    engine = create_engine(_url(), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            _run_with(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
