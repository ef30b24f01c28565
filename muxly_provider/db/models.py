"""SQLAlchemy 2 models of Muxly's tables.

The 15 tables of the seed schema keep its column names, types, defaults, unique constraints and cascading
foreign keys; ``route_rules`` and ``rule_destinations`` are the two join tables SPEC §1 adds. JSON columns are
``TEXT`` holding JSON, as in the seed; :mod:`muxly_provider.config` validates them.

The metadata has no schema: on PostgreSQL the engine maps it to ``[muxly] db_schema`` with
``schema_translate_map`` (see :mod:`muxly_provider.db.engine`), so the same models serve SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, MetaData, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

_NOW = text("CURRENT_TIMESTAMP")
_TRUE = text("true")


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime, nullable=False, server_default=_NOW)


def _updated() -> Mapped[datetime]:
    return mapped_column(DateTime, nullable=False, server_default=_NOW)


def _enabled() -> Mapped[bool]:
    return mapped_column(Boolean, nullable=False, server_default=_TRUE)


def _fk(target: str) -> ForeignKey:
    return ForeignKey(target, ondelete="CASCADE")


class Base(DeclarativeBase):
    """Declarative base bound to Muxly's metadata."""

    metadata = metadata


class Connector(Base):
    """Where data comes from (``connector_type`` plus JSON ``auth_settings`` and ``connection_settings``)."""

    __tablename__ = "connectors"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    connector_type: Mapped[str] = mapped_column(Text, nullable=False)
    enabled: Mapped[bool] = _enabled()
    auth_settings: Mapped[str] = mapped_column(Text, nullable=False)
    connection_settings: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Setting(Base):
    """A global key/value setting."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Destination(Base):
    """Where records go (``destination_type`` plus JSON ``config``)."""

    __tablename__ = "destinations"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    destination_type: Mapped[str] = mapped_column(Text, nullable=False)
    config: Mapped[str] = mapped_column(Text, nullable=False)
    enabled: Mapped[bool] = _enabled()
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class RoutingRule(Base):
    """A condition deciding which records a rule takes (``condition`` NULL means always)."""

    __tablename__ = "routing_rules"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("100"))
    enabled: Mapped[bool] = _enabled()
    condition: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class RuleTransformation(Base):
    """One transformation step of a rule, applied in ``sequence_order``."""

    __tablename__ = "rule_transformations"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    rule_id: Mapped[str] = mapped_column(Text, _fk("routing_rules.id"), nullable=False)
    transformation_type: Mapped[str] = mapped_column(Text, nullable=False)
    config: Mapped[str] = mapped_column(Text, nullable=False)
    sequence_order: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Route(Base):
    """Connects a connector to routing rules, with its error handling."""

    __tablename__ = "routes"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    connector_id: Mapped[str] = mapped_column(Text, _fk("connectors.id"), nullable=False)
    enabled: Mapped[bool] = _enabled()
    error_handling: Mapped[str] = mapped_column(
        Text, nullable=False, server_default=text('\'{"mode": "continue"}\'')
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class RouteRule(Base):
    """Join table: the rules of a route (added by Muxly, SPEC §1)."""

    __tablename__ = "route_rules"

    route_id: Mapped[str] = mapped_column(Text, _fk("routes.id"), primary_key=True)
    rule_id: Mapped[str] = mapped_column(Text, _fk("routing_rules.id"), primary_key=True)
    sequence_order: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    created_at: Mapped[datetime] = _created()


class RuleDestination(Base):
    """Join table: the destinations of a rule (added by Muxly, SPEC §1)."""

    __tablename__ = "rule_destinations"

    rule_id: Mapped[str] = mapped_column(Text, _fk("routing_rules.id"), primary_key=True)
    destination_id: Mapped[str] = mapped_column(Text, _fk("destinations.id"), primary_key=True)
    created_at: Mapped[datetime] = _created()


class SchedulerJob(Base):
    """A job: when to run which action of which connector; each enabled job becomes one DAG."""

    __tablename__ = "scheduler_jobs"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    job_type: Mapped[str] = mapped_column(Text, nullable=False)
    schedule: Mapped[str | None] = mapped_column(Text, nullable=True)
    connector_id: Mapped[str] = mapped_column(Text, _fk("connectors.id"), nullable=False)
    action_type: Mapped[str] = mapped_column(Text, nullable=False)
    action_params: Mapped[str] = mapped_column(Text, nullable=False)
    enabled: Mapped[bool] = _enabled()
    max_retries: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("3"))
    backoff_strategy: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'exponential'"))
    timeout_seconds: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("300"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class JobExecution(Base):
    """One Airflow DAG run of a job, mirrored by the listener and the operators."""

    __tablename__ = "job_executions"
    __table_args__ = (
        Index("idx_job_executions_status", "status"),
        Index("idx_job_executions_job_start", "job_id", "start_time", "id"),
        Index("idx_job_executions_start_time", "start_time"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    job_id: Mapped[str] = mapped_column(Text, _fk("scheduler_jobs.id"), nullable=False)
    start_time: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    end_time: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    triggered_by: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'schedule'"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class WebhookTrigger(Base):
    """A webhook endpoint (``secret_key`` checks the HMAC signature).

    A delivery starts a run of ``job_id`` when set, creates an event of the asset ``asset_uri`` when set, and is
    always kept in ``webhook_events`` for sensors; a row with neither is a sensor-only endpoint.
    """

    __tablename__ = "webhook_triggers"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    job_id: Mapped[str | None] = mapped_column(Text, _fk("scheduler_jobs.id"), nullable=True)
    endpoint_path: Mapped[str] = mapped_column(Text, nullable=False)
    secret_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    enabled: Mapped[bool] = _enabled()
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    asset_uri: Mapped[str | None] = mapped_column(Text, nullable=True)


class User(Base):
    """A user of Muxly's API (local password or an external identity provider)."""

    __tablename__ = "users"
    __table_args__ = (
        Index("idx_users_username", "username"),
        Index("idx_users_email", "email"),
        Index("idx_users_external_id", "external_id"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    username: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    email: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    display_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    external_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    auth_provider: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'local'"))
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=_TRUE)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Role(Base):
    """A named set of permissions."""

    __tablename__ = "roles"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class UserRole(Base):
    """Join table: the roles of a user."""

    __tablename__ = "user_roles"

    user_id: Mapped[str] = mapped_column(Text, _fk("users.id"), primary_key=True)
    role_id: Mapped[str] = mapped_column(Text, _fk("roles.id"), primary_key=True)
    created_at: Mapped[datetime] = _created()


class Permission(Base):
    """A (resource, action) permission; ``*`` is a wildcard."""

    __tablename__ = "permissions"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    resource: Mapped[str] = mapped_column(Text, nullable=False)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class RolePermission(Base):
    """Join table: the permissions of a role."""

    __tablename__ = "role_permissions"

    role_id: Mapped[str] = mapped_column(Text, _fk("roles.id"), primary_key=True)
    permission_id: Mapped[str] = mapped_column(Text, _fk("permissions.id"), primary_key=True)
    created_at: Mapped[datetime] = _created()


class AuthSession(Base):
    """An API session: only hashes of its tokens are stored."""

    __tablename__ = "auth_sessions"
    __table_args__ = (
        Index("idx_auth_sessions_user_id", "user_id"),
        Index("idx_auth_sessions_expires_at", "expires_at"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    user_id: Mapped[str] = mapped_column(Text, _fk("users.id"), nullable=False)
    token_hash: Mapped[str] = mapped_column(Text, nullable=False)
    refresh_token_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    created_at: Mapped[datetime] = _created()
    last_accessed_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, server_default=_NOW)


class DeadLetter(Base):
    """A batch a destination could not take after its retries, with the error (the dead-letter store).

    ``id`` is derived from the DAG id, run id, destination id and batch number, so a retried run overwrites
    its own rows; ``records`` is the batch as a JSON list. The ``replay*`` columns belong to
    :mod:`muxly_provider.destinations.replay`: ``replayed_at``/``replayed_to`` once a replay delivered the letter,
    ``replay_error`` of the last failed replay, and ``replay_claim``/``replay_claimed_at`` while one runs (the
    compare-and-set that keeps two replays from delivering the same letter twice).
    """

    __tablename__ = "dead_letters"
    __table_args__ = (
        Index("idx_dead_letters_run", "dag_id", "run_id"),
        Index("idx_dead_letters_destination_id", "destination_id"),
        Index("idx_dead_letters_replayed_at", "replayed_at"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    job_id: Mapped[str] = mapped_column(Text, nullable=False)
    dag_id: Mapped[str] = mapped_column(Text, nullable=False)
    run_id: Mapped[str] = mapped_column(Text, nullable=False)
    destination_id: Mapped[str] = mapped_column(Text, nullable=False)
    batch_index: Mapped[int] = mapped_column(Integer, nullable=False)
    record_count: Mapped[int] = mapped_column(Integer, nullable=False)
    records: Mapped[str] = mapped_column(Text, nullable=False)
    error: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    replayed_to: Mapped[str | None] = mapped_column(Text, nullable=True)
    replay_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    replay_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    replay_claim: Mapped[str | None] = mapped_column(Text, nullable=True)
    replay_claimed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class LoginFailure(Base):
    """Failed logins of one (user name, client) pair in the current throttle window.

    ``throttle_key`` is the SHA-256 of the pair (see :mod:`muxly_provider.auth.throttle`); rows whose window is
    over are pruned.
    """

    __tablename__ = "login_failures"
    __table_args__ = (Index("idx_login_failures_window_start", "window_start"),)

    throttle_key: Mapped[str] = mapped_column(Text, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False)
    window_start: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class WebhookDelivery(Base):
    """A delivery a webhook trigger accepted, by its replay key (a digest of the signed bytes).

    The primary key rejects a second delivery with the same key; rows older than
    ``[muxly] webhook_replay_window_seconds`` are pruned (see :mod:`muxly_provider.api.webhook_replays`).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("idx_webhook_deliveries_received_at", "received_at"),)

    trigger_id: Mapped[str] = mapped_column(Text, _fk("webhook_triggers.id"), primary_key=True)
    replay_key: Mapped[str] = mapped_column(Text, primary_key=True)
    received_at: Mapped[datetime] = _created()


class MachineSettings(Base):
    """The settings one machine (``hostname``, ``role``) runs Muxly with, as ``airflow muxly doctor`` saw them.

    ``settings`` is JSON of the values that must agree between machines (never a secret: the Fernet key only as
    a short hash), ``fingerprint`` their SHA-256 (see :mod:`muxly_provider.doctor`).
    """

    __tablename__ = "machine_settings"

    hostname: Mapped[str] = mapped_column(Text, primary_key=True)
    role: Mapped[str] = mapped_column(Text, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(Text, nullable=False)
    settings: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = _created()


class WebhookEvent(Base):
    """A valid delivery of a webhook trigger, kept for sensors and event triggers (see
    :mod:`muxly_provider.webhook_events`); ``payload`` is the JSON body as text (``NULL`` for an empty body),
    pruned after ``[muxly] webhook_event_retention_seconds``."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        Index("idx_webhook_events_endpoint_received", "endpoint_path", "received_at"),
        Index("idx_webhook_events_received_at", "received_at"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    trigger_id: Mapped[str] = mapped_column(Text, _fk("webhook_triggers.id"), nullable=False)
    endpoint_path: Mapped[str] = mapped_column(Text, nullable=False)
    received_at: Mapped[datetime] = _created()
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    replay_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_id: Mapped[str | None] = mapped_column(Text, nullable=True)


class WebhookEventClaim(Base):
    """A delivery consumed by one waiting consumer (a sensor's endpoint and condition, an event trigger).

    The primary key makes the claim an INSERT that fails for every second consumer with the same key.
    """

    __tablename__ = "webhook_event_claims"

    event_id: Mapped[str] = mapped_column(Text, _fk("webhook_events.id"), primary_key=True)
    consumer_key: Mapped[str] = mapped_column(Text, primary_key=True)
    claimed_at: Mapped[datetime] = _created()
    claimed_by: Mapped[str | None] = mapped_column(Text, nullable=True)
