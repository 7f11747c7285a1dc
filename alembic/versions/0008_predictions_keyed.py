"""Predictions as (model, image, class index, score), what was said once per image in a table of
its own, the models' classes as rows; on PostgreSQL the predictions partitioned by model.

A GPU scores thousands of images a second, 40 rows each. Measured on PostgreSQL, COPY into the
table as 0002 made it (a serial id, the class URI, the image's hash and time on every row, four
foreign keys checked row by row, a unique key and two more indexes) took 23,000 rows a second.
A row now holds four numbers, keyed by its natural key, with the ranking index only, and the
image's hash, run and time are written once per image in `scored_images`.

What the foreign keys did is done where it happens: an image that leaves its record takes its
predictions with it (the record store deletes them), and a model's rows go with its partition.
On PostgreSQL the table is partitioned by list of model ids: each model's rows (up to 2 billion
at 50 million images x 40 classes) sit in a table of their own, made as the model first writes,
so that its ranking index and its deletion stay one model's size. A default partition takes
rows of a model whose partition could not be made.

`upgrade` is longer than the project's 80 lines on purpose: it declares the schema of this
revision, one statement per table, and a migration is never edited once it has shipped.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    # the old table's index (and, on PostgreSQL, constraint) names stay taken until it is dropped
    op.drop_index("ix_predictions_class_score", table_name="predictions")
    op.drop_index("ix_predictions_record_id", table_name="predictions")
    op.rename_table("predictions", "predictions_0002")
    if postgres:
        op.drop_constraint("uq_predictions_key", "predictions_0002", type_="unique")
        op.drop_constraint("pk_predictions", "predictions_0002", type_="primary")
    op.create_table(
        "model_classes",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("class_index", sa.SmallInteger(), nullable=False),
        sa.Column("uri", sa.String(length=1000), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name="fk_model_classes_model_id_models",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", "class_index", name="pk_model_classes"),
        sa.UniqueConstraint("model_id", "uri", name="uq_model_classes_model_id"),
    )
    op.create_table(
        "scored_images",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("image_sha256", sa.String(length=64), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("scored_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name="fk_scored_images_image_id_images",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name="fk_scored_images_model_id_models",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", "image_id", name="pk_scored_images"),
    )
    if postgres:
        op.execute(
            "CREATE TABLE predictions (model_id INTEGER NOT NULL, image_id INTEGER NOT NULL, "
            "class_index SMALLINT NOT NULL, score FLOAT NOT NULL, "
            "CONSTRAINT pk_predictions PRIMARY KEY (model_id, image_id, class_index)"
            ") PARTITION BY LIST (model_id)"
        )
        op.execute("CREATE TABLE predictions_default PARTITION OF predictions DEFAULT")
    else:
        op.create_table(
            "predictions",
            sa.Column("model_id", sa.Integer(), nullable=False),
            sa.Column("image_id", sa.Integer(), nullable=False),
            sa.Column("class_index", sa.SmallInteger(), nullable=False),
            sa.Column("score", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint("model_id", "image_id", "class_index", name="pk_predictions"),
        )
    for model_id, classes in bind.execute(sa.text("SELECT id, classes FROM models")).all():
        if postgres:
            op.execute(
                f"CREATE TABLE predictions_m{int(model_id)} PARTITION OF predictions "
                f"FOR VALUES IN ({int(model_id)})"
            )
        classes = json.loads(classes) if isinstance(classes, str) else classes or []
        uris = list(dict.fromkeys(entry["uri"] for entry in classes))
        if uris:
            bind.execute(
                sa.text("INSERT INTO model_classes VALUES (:model, :index, :uri)"),
                [{"model": model_id, "index": i, "uri": uri} for i, uri in enumerate(uris)],
            )
    op.execute(
        "INSERT INTO scored_images (model_id, image_id, record_id, image_sha256, run_id, "
        "scored_at) SELECT model_id, image_id, MIN(record_id), MIN(image_sha256), MAX(run_id), "
        "MAX(scored_at) FROM predictions_0002 WHERE model_id IN (SELECT id FROM models) "
        "AND image_id IN (SELECT id FROM images) GROUP BY model_id, image_id"
    )
    op.execute(
        "INSERT INTO predictions (model_id, image_id, class_index, score) "
        "SELECT p.model_id, p.image_id, c.class_index, p.score FROM predictions_0002 p "
        "JOIN model_classes c ON c.model_id = p.model_id AND c.uri = p.class_uri "
        "WHERE p.image_id IN (SELECT id FROM images)"
    )
    op.drop_table("predictions_0002")
    op.create_index(
        "ix_predictions_class_score", "predictions", ["model_id", "class_index", "score"]
    )


def downgrade() -> None:
    raise NotImplementedError(
        "catalogs keep their predictions by class index from 0008 on: restore a backup to go back"
    )
