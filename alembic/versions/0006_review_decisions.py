"""Curators' review decisions on findings: an append-only history.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("record_iri", sa.String(length=1000), nullable=False),
        sa.Column("class_uri", sa.String(length=1000), nullable=False),
        sa.Column("class_label", sa.String(length=500), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("model_name", sa.String(length=200), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("image_url", sa.String(length=2000), nullable=True),
        sa.Column("method", sa.String(length=20), nullable=True),
        sa.Column("annotated", sa.Boolean(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name="fk_review_decisions_record_id_records",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name="fk_review_decisions_model_id_models",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_review_decisions"),
    )
    op.create_index("ix_review_decisions_finding", "review_decisions", ["record_iri", "class_uri"])


def downgrade() -> None:
    op.drop_index("ix_review_decisions_finding", table_name="review_decisions")
    op.drop_table("review_decisions")
