"""SQL sink: scores keyed on (record, model, class), models, and RDF graphs as triples.

Revision ID: sink0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import context, op

revision = "sink0001"
down_revision = None
branch_labels = None
depends_on = None


def _prefix() -> str:
    return context.config.attributes.get("table_prefix", "monalia_")


def upgrade() -> None:
    p = _prefix()
    op.create_table(
        f"{p}models",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("trainer", sa.String(100)),
        sa.Column("backbone", sa.String(100)),
        sa.Column("dataset_hash", sa.String(64)),
        sa.Column("classes", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("publish_id", sa.String(36), nullable=False),
    )
    op.create_table(
        f"{p}scores",
        # sha256 of record, model and class: the key upserts go by, short enough for any index
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("record_iri", sa.String(1000), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("class_uri", sa.String(1000), nullable=False),
        sa.Column("class_label", sa.Text),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("image_url", sa.String(2000)),
        sa.Column("image_sha256", sa.String(64)),
        sa.Column("run_id", sa.Integer),
        sa.Column("scored_at", sa.DateTime(timezone=True)),
        sa.Column("publish_id", sa.String(36), nullable=False),
    )
    op.create_index(
        f"ix_{p}scores_model_class_score", f"{p}scores", ["model", "class_uri", "score"]
    )
    op.create_index(f"ix_{p}scores_record", f"{p}scores", ["record_iri"])
    op.create_table(
        f"{p}triples",
        sa.Column("key", sa.String(64), primary_key=True),  # sha256 of graph and triple
        sa.Column("graph", sa.String(1000), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("predicate", sa.Text, nullable=False),
        sa.Column("object", sa.Text, nullable=False),  # in N-Triples syntax
    )
    op.create_index(f"ix_{p}triples_graph", f"{p}triples", ["graph"])


def downgrade() -> None:
    p = _prefix()
    op.drop_table(f"{p}triples")
    op.drop_table(f"{p}scores")
    op.drop_table(f"{p}models")
