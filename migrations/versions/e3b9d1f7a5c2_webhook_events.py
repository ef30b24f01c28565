"""Webhook events: deliveries kept for sensors and asset events; triggers without a job, or with an asset.

Revision ID: e3b9d1f7a5c2
Revises: c7e1a4d9f2b6
Create Date: 2026-12-02 16:45:00

Adds:

* ``webhook_events``: every valid delivery of a webhook trigger (``trigger_id``, ``endpoint_path``,
  ``received_at``, the JSON ``payload`` as text, the ``replay_key`` of a signed delivery, the ``run_id`` it
  started if any), kept ``[muxly] webhook_event_retention_seconds`` between the api-server and the triggerer;
  indexes on (``endpoint_path``, ``received_at``) for the sensors' polls and on ``received_at`` for retention;
* ``webhook_event_claims``: primary key (``event_id``, ``consumer_key``): the INSERT that consumes a delivery
  for one waiting sensor (consumer key: a digest of endpoint and condition) fails for any second one;
* ``webhook_triggers.job_id`` becomes nullable (a trigger may be only a sensor endpoint or name only an asset)
  and ``webhook_triggers.asset_uri`` (nullable) names the asset a delivery creates an event of.

SQLite cannot drop a NOT NULL constraint: the trigger table is rebuilt (copy and move, with the foreign key
pragma off as :mod:`migrations.env` runs it, so nothing cascades). The downgrade deletes the triggers without a
job (they cannot exist in the old schema), then restores ``job_id NOT NULL`` and drops the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

# Revision identifiers, used by Alembic.
revision: str = "e3b9d1f7a5c2"
down_revision: str | Sequence[str] | None = "c7e1a4d9f2b6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("CURRENT_TIMESTAMP")


def _schema() -> str | None:
    """Muxly's schema on PostgreSQL (``ALTER TABLE`` is not schema-translated as ``CREATE TABLE`` is)."""
    schema = op.get_context().version_table_schema
    return str(schema) if schema else None


def _is_sqlite() -> bool:
    return op.get_context().dialect.name == "sqlite"


def _triggers_table(*, job_id_nullable: bool, asset_uri: bool) -> sa.Table:
    """``webhook_triggers`` as it stands before or after this revision (the copy source of a SQLite rebuild;
    given explicitly so that the rebuild also prints in offline ``--sql`` mode)."""
    meta = sa.MetaData()
    sa.Table("scheduler_jobs", meta, sa.Column("id", sa.Text(), primary_key=True))
    columns: list[sa.Column[Any]] = [
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Text(), nullable=job_id_nullable),
        sa.Column("endpoint_path", sa.Text(), nullable=False),
        sa.Column("secret_key", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("created_at", sa.DateTime(), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(), nullable=False, server_default=_NOW),
    ]
    if asset_uri:
        columns.append(sa.Column("asset_uri", sa.Text(), nullable=True))
    return sa.Table(
        "webhook_triggers",
        meta,
        *columns,
        sa.PrimaryKeyConstraint("id", name="pk_webhook_triggers"),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["scheduler_jobs.id"],
            name="fk_webhook_triggers_job_id_scheduler_jobs",
            ondelete="CASCADE",
        ),
    )


def upgrade() -> None:
    """Create the event and claim tables; make ``job_id`` nullable and add ``asset_uri``."""
    schema = _schema()
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("trigger_id", sa.Text(), nullable=False),
        sa.Column("endpoint_path", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False, server_default=_NOW),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("replay_key", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.ForeignKeyConstraint(
            ["trigger_id"],
            ["webhook_triggers.id"],
            name=op.f("fk_webhook_events_trigger_id_webhook_triggers"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "idx_webhook_events_endpoint_received", "webhook_events", ["endpoint_path", "received_at"]
    )
    op.create_index("idx_webhook_events_received_at", "webhook_events", ["received_at"])
    op.create_table(
        "webhook_event_claims",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("consumer_key", sa.Text(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False, server_default=_NOW),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", "consumer_key", name=op.f("pk_webhook_event_claims")),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["webhook_events.id"],
            name=op.f("fk_webhook_event_claims_event_id_webhook_events"),
            ondelete="CASCADE",
        ),
    )
    if _is_sqlite():
        with op.batch_alter_table(
            "webhook_triggers",
            recreate="always",
            copy_from=_triggers_table(job_id_nullable=False, asset_uri=False),
        ) as batch:
            batch.alter_column("job_id", existing_type=sa.Text(), nullable=True)
            batch.add_column(sa.Column("asset_uri", sa.Text(), nullable=True))
    else:
        op.alter_column("webhook_triggers", "job_id", existing_type=sa.Text(), nullable=True, schema=schema)
        op.add_column("webhook_triggers", sa.Column("asset_uri", sa.Text(), nullable=True), schema=schema)


def downgrade() -> None:
    """Drop the event tables; delete the triggers without a job, drop ``asset_uri``, restore ``NOT NULL``."""
    schema = _schema()
    op.drop_table("webhook_event_claims")
    op.drop_index("idx_webhook_events_received_at", table_name="webhook_events")
    op.drop_index("idx_webhook_events_endpoint_received", table_name="webhook_events")
    op.drop_table("webhook_events")
    triggers = sa.table("webhook_triggers", sa.column("job_id"), schema=schema)
    op.execute(triggers.delete().where(triggers.c.job_id.is_(None)))
    if _is_sqlite():
        with op.batch_alter_table(
            "webhook_triggers",
            recreate="always",
            copy_from=_triggers_table(job_id_nullable=True, asset_uri=True),
        ) as batch:
            batch.drop_column("asset_uri")
            batch.alter_column("job_id", existing_type=sa.Text(), nullable=False)
    else:
        op.drop_column("webhook_triggers", "asset_uri", schema=schema)
        op.alter_column("webhook_triggers", "job_id", existing_type=sa.Text(), nullable=False, schema=schema)
