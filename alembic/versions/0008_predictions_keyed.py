"""Predictions keyed by (model, image, class), without a row id or foreign keys; on PostgreSQL
partitioned by model.

A GPU scores thousands of images a second, 40 rows each. Measured on PostgreSQL, COPY into the
table as 0002 made it (a serial id, four foreign keys checked row by row, a unique key and two
more indexes) took 23,000 rows a second; keyed by its natural key, with the ranking index only,
about five times as many. What the foreign keys did is done where it happens: an image that
leaves its record takes its predictions with it (the record store deletes them), and a model's
rows go with its partition.

On PostgreSQL the table is partitioned by list of model ids: each model's rows (up to 2 billion
at 50 million images x 40 classes) sit in a table of their own, created as the model first
writes, so that its ranking index and its deletion stay one model's size. A default partition
takes rows of a model whose partition could not be made.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = "model_id, image_id, record_id, class_uri, score, image_sha256, run_id, scored_at"


def upgrade() -> None:
    bind = op.get_bind()
    # the old table's index (and, on PostgreSQL, constraint) names stay taken until it is dropped
    op.drop_index("ix_predictions_class_score", table_name="predictions")
    op.drop_index("ix_predictions_record_id", table_name="predictions")
    op.rename_table("predictions", "predictions_0002")
    if bind.dialect.name == "postgresql":
        op.drop_constraint("uq_predictions_key", "predictions_0002", type_="unique")
        op.drop_constraint("pk_predictions", "predictions_0002", type_="primary")
        op.execute(
            "CREATE TABLE predictions ("
            "model_id INTEGER NOT NULL, image_id INTEGER NOT NULL, record_id INTEGER NOT NULL, "
            "class_uri VARCHAR(1000) NOT NULL, score FLOAT NOT NULL, image_sha256 VARCHAR(64), "
            "run_id INTEGER, scored_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, "
            "CONSTRAINT pk_predictions PRIMARY KEY (model_id, image_id, class_uri)"
            ") PARTITION BY LIST (model_id)"
        )
        op.execute("CREATE TABLE predictions_default PARTITION OF predictions DEFAULT")
        for (model_id,) in bind.execute(sa.text("SELECT id FROM models")).all():
            op.execute(
                f"CREATE TABLE predictions_m{int(model_id)} PARTITION OF predictions "
                f"FOR VALUES IN ({int(model_id)})"
            )
    else:
        op.create_table(
            "predictions",
            sa.Column("model_id", sa.Integer(), nullable=False),
            sa.Column("image_id", sa.Integer(), nullable=False),
            sa.Column("record_id", sa.Integer(), nullable=False),
            sa.Column("class_uri", sa.String(length=1000), nullable=False),
            sa.Column("score", sa.Float(), nullable=False),
            sa.Column("image_sha256", sa.String(length=64), nullable=True),
            sa.Column("run_id", sa.Integer(), nullable=True),
            sa.Column("scored_at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("model_id", "image_id", "class_uri", name="pk_predictions"),
        )
    op.execute(
        f"INSERT INTO predictions ({COLUMNS}) SELECT {COLUMNS} FROM predictions_0002 "
        "WHERE model_id IN (SELECT id FROM models) AND image_id IN (SELECT id FROM images)"
    )
    op.drop_table("predictions_0002")
    op.create_index("ix_predictions_class_score", "predictions", ["model_id", "class_uri", "score"])


def downgrade() -> None:
    raise NotImplementedError("predictions keyed by model, image and class stay")
