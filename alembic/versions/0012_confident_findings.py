"""Confident-learning findings stored with their set of out-of-sample scores.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

Score sets made before this revision have no stored findings: their card has no
``confident_findings`` entry, and the reports compute them as before until
`monalia train --folds K` is run again (every fold already scored: it only stores them).
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "confident_findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("score_set_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("class_uri", sa.String(length=1000), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["score_set_id"],
            ["models.id"],
            name="fk_confident_findings_score_set_id_models",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name="fk_confident_findings_image_id_images",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_confident_findings"),
    )
    op.create_index(
        "ix_confident_findings_set_kind",
        "confident_findings",
        ["score_set_id", "kind", "rank"],
    )


def downgrade() -> None:
    op.drop_index("ix_confident_findings_set_kind", table_name="confident_findings")
    op.drop_table("confident_findings")
