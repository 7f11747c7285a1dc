"""Records with their subject terms and images, runs with their events, source state.

`upgrade` is longer than the project's 80 lines on purpose: it declares the schema of this
revision, one statement per table, and a migration is never edited once it has shipped.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=50), nullable=False),
        sa.Column("plugin", sa.String(length=100), nullable=True),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("pid_started", sa.String(length=40), nullable=True),
        sa.Column("seen", sa.Integer(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index("ix_runs_status", "runs", ["status"])

    op.create_table(
        "run_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("item", sa.String(length=1000), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_events_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_events")),
    )
    op.create_index(op.f("ix_run_events_run_id"), "run_events", ["run_id"])

    op.create_table(
        "records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("source_id", sa.String(length=500), nullable=False),
        sa.Column("iri", sa.String(length=1000), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("creators", sa.JSON(), nullable=False),
        sa.Column("date", sa.String(length=200), nullable=True),
        sa.Column("date_start", sa.Integer(), nullable=True),
        sa.Column("date_end", sa.Integer(), nullable=True),
        sa.Column("institution", sa.Text(), nullable=True),
        sa.Column("rights", sa.Text(), nullable=True),
        sa.Column("landing_page", sa.Text(), nullable=True),
        sa.Column("modified", sa.String(length=100), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("first_run_id", sa.Integer(), nullable=True),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["first_run_id"], ["runs.id"], name=op.f("fk_records_first_run_id_runs")
        ),
        sa.ForeignKeyConstraint(
            ["last_run_id"], ["runs.id"], name=op.f("fk_records_last_run_id_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_records")),
        sa.UniqueConstraint("iri", name=op.f("uq_records_iri")),
        sa.UniqueConstraint("source", "source_id", name="uq_records_source_source_id"),
    )

    op.create_table(
        "record_subjects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("uri", sa.String(length=1000), nullable=True),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("lang", sa.String(length=35), nullable=True),
        sa.Column("field", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name=op.f("fk_record_subjects_record_id_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_subjects")),
    )
    op.create_index(op.f("ix_record_subjects_record_id"), "record_subjects", ["record_id"])
    op.create_index("ix_record_subjects_uri", "record_subjects", ["uri"])

    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("iiif_service", sa.String(length=2000), nullable=True),
        sa.Column("is_main", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(length=1000), nullable=True),
        sa.Column("fetched_at", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name=op.f("fk_images_record_id_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
        sa.UniqueConstraint("record_id", "url", name="uq_images_record_id_url"),
    )
    op.create_index(op.f("ix_images_record_id"), "images", ["record_id"])
    op.create_index("ix_images_sha256", "images", ["sha256"])
    op.create_index("ix_images_status", "images", ["status"])

    op.create_table(
        "source_states",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("plugin", sa.String(length=100), nullable=False),
        sa.Column("bookmark", sa.JSON(), nullable=True),
        sa.Column("checkpoint", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["last_run_id"], ["runs.id"], name=op.f("fk_source_states_last_run_id_runs")
        ),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_source_states")),
    )


def downgrade() -> None:
    op.drop_table("source_states")
    op.drop_table("images")
    op.drop_table("record_subjects")
    op.drop_table("records")
    op.drop_table("run_events")
    op.drop_table("runs")
