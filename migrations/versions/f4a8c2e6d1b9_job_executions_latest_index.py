"""Job executions: indexes for the latest run of each job and the runs of the last day.

Revision ID: f4a8c2e6d1b9
Revises: e3b9d1f7a5c2
Create Date: 2026-12-02 19:15:00

Adds to ``job_executions``:

* ``idx_job_executions_job_start`` on (``job_id``, ``start_time``, ``id``): ``GET /jobs`` joins each job to its
  latest execution (a lateral ``ORDER BY start_time DESC, id DESC LIMIT 1`` per job on PostgreSQL); without it
  every page scans and sorts every execution (issue 14, 10,000 jobs under 1 s per page);
* ``idx_job_executions_start_time`` on (``start_time``): ``GET /overview`` counts the runs of the last 24 hours.

No data changes. The downgrade drops both indexes.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

# Revision identifiers, used by Alembic.
revision: str = "f4a8c2e6d1b9"
down_revision: str | Sequence[str] | None = "e3b9d1f7a5c2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema() -> str | None:
    """Muxly's schema on PostgreSQL (``CREATE INDEX`` on an existing table is not schema-translated)."""
    schema = op.get_context().version_table_schema
    return str(schema) if schema else None


def upgrade() -> None:
    """Create the two indexes of ``job_executions``."""
    schema = _schema()
    op.create_index(
        "idx_job_executions_job_start", "job_executions", ["job_id", "start_time", "id"], schema=schema
    )
    op.create_index("idx_job_executions_start_time", "job_executions", ["start_time"], schema=schema)


def downgrade() -> None:
    """Drop the two indexes (the table and its rows stay)."""
    schema = _schema()
    op.drop_index("idx_job_executions_start_time", table_name="job_executions", schema=schema)
    op.drop_index("idx_job_executions_job_start", table_name="job_executions", schema=schema)
