"""Subject texts resolved to thesaurus concepts by `monalia label`, with how each was matched.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subject_matches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=200), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("lang", sa.String(length=20), nullable=True),
        sa.Column("concept", sa.String(length=1000), nullable=False),
        sa.Column("how", sa.String(length=20), nullable=False),
        sa.Column("thesaurus", sa.String(length=100), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name="fk_subject_matches_record_id_records",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_subject_matches_run_id_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_subject_matches"),
    )
    op.create_index(
        "ix_subject_matches_dataset_record", "subject_matches", ["dataset", "record_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_subject_matches_dataset_record", table_name="subject_matches")
    op.drop_table("subject_matches")
