"""Muxly's Alembic migrations on SQLite and PostgreSQL: schema, defaults, cascades, round trips, drift."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from muxly_provider import settings
from muxly_provider.db import migrate, models
from muxly_provider.db.engine import get_engine
from muxly_provider.exceptions import MuxlyError

SEED_AND_JOIN_TABLES = {
    "connectors",
    "settings",
    "destinations",
    "routing_rules",
    "rule_transformations",
    "routes",
    "route_rules",
    "rule_destinations",
    "scheduler_jobs",
    "job_executions",
    "webhook_triggers",
    "users",
    "roles",
    "permissions",
    "user_roles",
    "role_permissions",
    "auth_sessions",
}
"""The 15 tables of the seed plus the two join tables of SPEC §1."""

EXTRA_TABLES = {
    "dead_letters",
    "login_failures",
    "webhook_deliveries",
    "machine_settings",
    "webhook_events",
    "webhook_event_claims",
}
"""Additional tables Muxly needs (SPEC §1: in the same schema, created by a migration)."""

MUXLY_TABLES = SEED_AND_JOIN_TABLES | EXTRA_TABLES


@pytest.fixture
def raw_engine(db_url: str) -> Iterator[Engine]:
    """An engine on the test database without Muxly's schema translation (for inspection)."""
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def _schema(db_url: str) -> str | None:
    return settings.db_schema(db_url)


def _table(db_url: str, name: str) -> str:
    schema = _schema(db_url)
    return f'"{schema}".{name}' if schema else name


def _tables(engine: Engine, schema: str | None) -> set[str]:
    return set(inspect(engine).get_table_names(schema=schema))


def test_models_declare_the_17_tables_and_the_extra_ones() -> None:
    assert len(SEED_AND_JOIN_TABLES) == 17
    assert set(models.metadata.tables) == MUXLY_TABLES


def test_upgrade_creates_every_table_with_the_models_columns(db_url: str, raw_engine: Engine) -> None:
    schema = _schema(db_url)
    assert migrate.current_revision(db_url) is None

    migrate.upgrade(db_url)

    assert _tables(raw_engine, schema) == MUXLY_TABLES | {migrate.VERSION_TABLE}
    assert migrate.current_revision(db_url) == migrate.head_revision()
    assert migrate.is_up_to_date(db_url)
    inspector = inspect(raw_engine)
    for table in models.metadata.sorted_tables:
        reflected = {c["name"]: c for c in inspector.get_columns(table.name, schema=schema)}
        assert list(reflected) == [c.name for c in table.columns], table.name
        for column in table.columns:
            assert reflected[column.name]["nullable"] == column.nullable, f"{table.name}.{column.name}"
        assert inspector.get_pk_constraint(table.name, schema=schema)["name"] == f"pk_{table.name}"
        for fk in inspector.get_foreign_keys(table.name, schema=schema):
            column = fk["constrained_columns"][0]
            assert fk["name"] == f"fk_{table.name}_{column}_{fk['referred_table']}"
            assert fk["options"].get("ondelete") == "CASCADE", fk["name"]
        assert len(inspector.get_foreign_keys(table.name, schema=schema)) == len(table.foreign_keys)
    uniques = {
        (t, u["name"])
        for t in ("users", "roles", "permissions")
        for u in inspector.get_unique_constraints(t, schema)
    }
    assert uniques == {
        ("users", "uq_users_username"),
        ("users", "uq_users_email"),
        ("roles", "uq_roles_name"),
        ("permissions", "uq_permissions_name"),
    }
    indexes = {
        i["name"]
        for t in ("users", "auth_sessions", "job_executions")
        for i in inspector.get_indexes(t, schema=schema)
        if i["name"].startswith("idx_")
    }
    assert indexes == {
        "idx_users_username",
        "idx_users_email",
        "idx_users_external_id",
        "idx_auth_sessions_user_id",
        "idx_auth_sessions_expires_at",
        "idx_job_executions_status",
        "idx_job_executions_job_start",
        "idx_job_executions_start_time",
    }


def test_server_defaults(db_url: str, raw_engine: Engine) -> None:
    migrate.upgrade(db_url)
    t = partial(_table, db_url)
    with raw_engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO {t('connectors')} (id, name, connector_type, auth_settings, connection_settings) "
                "VALUES ('c1', 'C', 'api', '{}', '{}')"
            )
        )
        conn.execute(text(f"INSERT INTO {t('routes')} (id, name, connector_id) VALUES ('r1', 'R', 'c1')"))
        conn.execute(
            text(
                f"INSERT INTO {t('scheduler_jobs')} (id, name, job_type, connector_id, action_type, action_params) "
                "VALUES ('j1', 'J', 'cron', 'c1', 'sync', '{}')"
            )
        )
        conn.execute(text(f"INSERT INTO {t('routing_rules')} (id, name) VALUES ('rule1', 'Rule')"))
        conn.execute(
            text(f"INSERT INTO {t('users')} (id, username, email) VALUES ('u1', 'ann', 'ann@example.com')")
        )
        job = conn.execute(text(f"SELECT * FROM {t('scheduler_jobs')}")).mappings().one()
        route = conn.execute(text(f"SELECT * FROM {t('routes')}")).mappings().one()
        connector = conn.execute(text(f"SELECT * FROM {t('connectors')}")).mappings().one()
        rule = conn.execute(text(f"SELECT * FROM {t('routing_rules')}")).mappings().one()
        user = conn.execute(text(f"SELECT * FROM {t('users')}")).mappings().one()

    assert (job["max_retries"], job["backoff_strategy"], job["timeout_seconds"]) == (3, "exponential", 300)
    assert bool(job["enabled"]) is True
    assert route["error_handling"] == '{"mode": "continue"}'
    assert bool(route["enabled"]) is True
    assert bool(connector["enabled"]) is True
    assert connector["created_at"] is not None
    assert connector["updated_at"] is not None
    assert rule["priority"] == 100
    assert rule["condition"] is None
    assert user["auth_provider"] == "local"
    assert bool(user["is_active"]) is True


def test_upgrade_twice_changes_nothing(
    db_url: str, raw_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate.upgrade(db_url)
    with raw_engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {_table(db_url, 'settings')} (key, value) VALUES ('k', 'v')"))

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("alembic upgrade must not run on a current database")

    monkeypatch.setattr(migrate.command, "upgrade", fail)
    migrate.upgrade(db_url)

    assert migrate.current_revision(db_url) == migrate.head_revision()
    with raw_engine.connect() as conn:
        assert conn.execute(text(f"SELECT value FROM {_table(db_url, 'settings')}")).scalar_one() == "v"


def test_downgrade_to_base_removes_every_table_and_upgrade_works_again(
    db_url: str, raw_engine: Engine
) -> None:
    schema = _schema(db_url)
    migrate.upgrade(db_url)

    migrate.downgrade(db_url, "base")

    assert _tables(raw_engine, schema) & MUXLY_TABLES == set()
    assert migrate.current_revision(db_url) is None
    assert not migrate.is_up_to_date(db_url)

    migrate.upgrade(db_url)

    assert _tables(raw_engine, schema) >= MUXLY_TABLES
    assert migrate.is_up_to_date(db_url)


def test_deleting_a_connector_cascades_to_its_routes_and_jobs(db_url: str) -> None:
    migrate.upgrade(db_url)
    engine = get_engine(db_url)  # Muxly's engine: SQLite foreign keys switched on
    t = partial(_table, db_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO {t('connectors')} (id, name, connector_type, auth_settings, connection_settings) "
                "VALUES ('c1', 'C', 'api', '{}', '{}'), ('c2', 'Other', 'api', '{}', '{}')"
            )
        )
        conn.execute(text(f"INSERT INTO {t('routing_rules')} (id, name) VALUES ('rule1', 'Rule')"))
        conn.execute(
            text(
                f"INSERT INTO {t('routes')} (id, name, connector_id) VALUES ('r1', 'R', 'c1'), ('r2', 'R2', 'c2')"
            )
        )
        conn.execute(text(f"INSERT INTO {t('route_rules')} (route_id, rule_id) VALUES ('r1', 'rule1')"))
        conn.execute(
            text(
                f"INSERT INTO {t('scheduler_jobs')} (id, name, job_type, connector_id, action_type, action_params) "
                "VALUES ('j1', 'J', 'cron', 'c1', 'sync', '{}')"
            )
        )
        conn.execute(
            text(
                f"INSERT INTO {t('job_executions')} (id, job_id, start_time, status) "
                "VALUES ('e1', 'j1', CURRENT_TIMESTAMP, 'success')"
            )
        )
        conn.execute(
            text(
                f"INSERT INTO {t('webhook_triggers')} (id, job_id, endpoint_path) VALUES ('w1', 'j1', 'hook')"
            )
        )

    with engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {t('connectors')} WHERE id = 'c1'"))

    with engine.connect() as conn:

        def count(name: str) -> int:
            return int(conn.execute(text(f"SELECT count(*) FROM {t(name)}")).scalar_one())

        assert count("routes") == 1  # r2 of the other connector stays
        assert count("route_rules") == 0
        assert count("scheduler_jobs") == 0
        assert count("job_executions") == 0
        assert count("webhook_triggers") == 0
        assert count("routing_rules") == 1  # rules are shared, only their link to the route goes


def _schema_metadata(schema: str | None) -> MetaData:
    """Muxly's metadata as it is on the database: in ``schema`` on PostgreSQL."""
    if schema is None:
        return models.metadata
    target = MetaData(naming_convention=models.metadata.naming_convention)
    for table in models.metadata.sorted_tables:
        table.to_metadata(target, schema=schema)
    return target


def test_migrated_schema_matches_the_models(db_url: str, raw_engine: Engine) -> None:
    schema = _schema(db_url)
    migrate.upgrade(db_url)

    with raw_engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_schemas": schema is not None,
                "include_name": lambda name, type_, _parent: type_ != "schema" or name == schema,
                "version_table": migrate.VERSION_TABLE,
                "version_table_schema": schema,
            },
        )
        differences = compare_metadata(context, _schema_metadata(schema))

    assert differences == []


def test_offline_sql_prints_the_migration_and_changes_nothing(
    db_url: str, raw_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = _schema(db_url)

    migrate.upgrade(db_url, sql=True)

    sql = capsys.readouterr().out
    for table in MUXLY_TABLES:
        assert f"CREATE TABLE {table} (" in sql
    assert "ON DELETE CASCADE" in sql
    assert migrate.VERSION_TABLE in sql
    if schema:
        assert f"CREATE SCHEMA IF NOT EXISTS {schema}" in sql
        assert f"SET LOCAL search_path TO {schema}" in sql
    assert _tables(raw_engine, schema) & MUXLY_TABLES == set()

    migrate.upgrade(db_url)
    migrate.downgrade(db_url, "base", sql=True)

    sql = capsys.readouterr().out
    assert f"-- Running downgrade {migrate.head_revision()} -> " in sql
    for table in MUXLY_TABLES:
        assert f"DROP TABLE {table};" in sql
    assert _tables(raw_engine, schema) >= MUXLY_TABLES


def test_unknown_revision_in_the_database_is_a_clear_error(db_url: str, raw_engine: Engine) -> None:
    migrate.upgrade(db_url)
    with raw_engine.begin() as conn:
        conn.execute(text(f"UPDATE {_table(db_url, migrate.VERSION_TABLE)} SET version_num = 'fffffffffff0'"))

    with pytest.raises(MuxlyError, match="newer version"):
        migrate.upgrade(db_url)


def test_migrations_dir_is_the_repository_folder_in_a_development_install() -> None:
    directory = migrate.migrations_dir()
    assert (directory / "env.py").is_file()
    assert (directory / "alembic.ini").is_file()
    assert any((directory / "versions").glob(f"{migrate.head_revision()}_*.py"))


def test_a1c4e8f2b7d3_seeds_manage_credentials_for_admin_only_and_downgrades(
    db_url: str, raw_engine: Engine
) -> None:
    schema = _schema(db_url)
    t = partial(_table, db_url)
    migrate.upgrade(db_url)
    with raw_engine.connect() as conn:
        row = conn.execute(
            text(
                f"SELECT resource, action, description FROM {t('permissions')} WHERE name = 'manage:credentials'"
            )
        ).one()
        links = conn.execute(
            text(f"SELECT role_id FROM {t('role_permissions')} WHERE permission_id = 'manage:credentials'")
        ).all()
        admin = conn.execute(
            text(f"SELECT permission_id FROM {t('role_permissions')} WHERE role_id = 'admin'")
        ).all()
    assert tuple(row) == ("credentials", "*", "Write inline credentials into configs")
    assert links == []  # admin holds it through admin:all (*:*); no other role gets it
    assert [tuple(a) for a in admin] == [("admin:all",)]

    migrate.downgrade(db_url, "8b4f2c6d1e90")

    assert _tables(raw_engine, schema) & {"login_failures", "webhook_deliveries"} == set()
    with raw_engine.connect() as conn:
        names = set(conn.execute(text(f"SELECT name FROM {t('permissions')}")).scalars())
    assert "manage:credentials" not in names and "admin:all" in names
    migrate.upgrade(db_url)
    assert migrate.is_up_to_date(db_url)


def test_e3b9d1f7a5c2_keeps_triggers_and_their_deliveries_and_downgrades_without_job_rows(
    db_url: str, raw_engine: Engine
) -> None:
    """The SQLite rebuild of ``webhook_triggers`` keeps its rows and their ``webhook_deliveries`` (no cascade);
    the downgrade deletes the triggers the old schema cannot hold (no job) and restores ``job_id NOT NULL``."""
    t = partial(_table, db_url)
    migrate.upgrade(db_url, revision="c7e1a4d9f2b6")
    with raw_engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO {t('connectors')} (id, name, connector_type, auth_settings, connection_settings) "
                "VALUES ('c', 'C', 'api', '{}', '{}')"
            )
        )
        conn.execute(
            text(
                f"INSERT INTO {t('scheduler_jobs')} (id, name, job_type, connector_id, action_type, "
                "action_params) VALUES ('j', 'J', 'webhook', 'c', 'sync', '{}')"
            )
        )
        conn.execute(
            text(f"INSERT INTO {t('webhook_triggers')} (id, job_id, endpoint_path) VALUES ('old', 'j', 'o')")
        )
        conn.execute(
            text(f"INSERT INTO {t('webhook_deliveries')} (trigger_id, replay_key) VALUES ('old', 'k')")
        )

    migrate.upgrade(db_url)

    with raw_engine.begin() as conn:
        assert conn.execute(text(f"SELECT id, job_id, asset_uri FROM {t('webhook_triggers')}")).all() == [
            ("old", "j", None)
        ]
        assert conn.execute(text(f"SELECT replay_key FROM {t('webhook_deliveries')}")).scalars().all() == [
            "k"
        ]
        conn.execute(
            text(
                f"INSERT INTO {t('webhook_triggers')} (id, job_id, endpoint_path, asset_uri) "
                "VALUES ('sensor', NULL, 's', NULL), ('asset', NULL, 'a', 's3://b/k')"
            )
        )
        conn.execute(
            text(
                f"INSERT INTO {t('webhook_events')} (id, trigger_id, endpoint_path, payload) "
                "VALUES ('e1', 'sensor', 's', '{}')"
            )
        )
        conn.execute(
            text(f"INSERT INTO {t('webhook_event_claims')} (event_id, consumer_key) VALUES ('e1', 'x')")
        )
        with pytest.raises(IntegrityError), conn.begin_nested():  # one consumer per delivery and key
            conn.execute(
                text(f"INSERT INTO {t('webhook_event_claims')} (event_id, consumer_key) VALUES ('e1', 'x')")
            )

    migrate.downgrade(db_url, "c7e1a4d9f2b6")

    schema = _schema(db_url)
    assert _tables(raw_engine, schema) & {"webhook_events", "webhook_event_claims"} == set()
    columns = {c["name"]: c for c in inspect(raw_engine).get_columns("webhook_triggers", schema=schema)}
    assert "asset_uri" not in columns and columns["job_id"]["nullable"] is False
    with raw_engine.connect() as conn:
        assert conn.execute(text(f"SELECT id FROM {t('webhook_triggers')}")).scalars().all() == ["old"]
        assert conn.execute(text(f"SELECT replay_key FROM {t('webhook_deliveries')}")).scalars().all() == [
            "k"
        ]
    migrate.upgrade(db_url)
    assert migrate.is_up_to_date(db_url)
