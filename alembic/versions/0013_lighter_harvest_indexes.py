"""Two indexes a harvest kept up for nothing: subjects without a URI are no longer in the URI
index (a lookup by URI never finds them), and images lose their index on record_id alone (the
unique index on record_id and url starts with it).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

WITH_A_URI = sa.text("uri IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_record_subjects_uri", table_name="record_subjects")
    op.create_index(
        "ix_record_subjects_uri",
        "record_subjects",
        ["uri"],
        sqlite_where=WITH_A_URI,
        postgresql_where=WITH_A_URI,
    )
    op.drop_index("ix_images_record_id", table_name="images")


def downgrade() -> None:
    op.create_index("ix_images_record_id", "images", ["record_id"])
    op.drop_index("ix_record_subjects_uri", table_name="record_subjects")
    op.create_index("ix_record_subjects_uri", "record_subjects", ["uri"])
