"""The catalog: created at head, checked against its schema, upgraded, refused when newer."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from monalia.catalog.database import Catalog
from monalia.catalog.models import Base, include_in_comparison
from monalia.errors import CatalogError


def test_new_catalog_is_created_at_head_and_matches_the_models(catalog_url):
    catalog = Catalog.open(catalog_url)
    status = catalog.schema_status()
    assert status.up_to_date, f"a new catalog should be at head, is at {status.current}"
    with catalog.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": include_in_comparison}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == [], f"migrations and models differ: {differences}"
    catalog.close()


def test_a_new_sqlite_catalog_is_made_in_one_step_as_the_migrations_make_it(tmp_path):
    """A new SQLite catalog is made from the dump of what the migrations make (no Alembic, no
    migration replayed); the dump shipped is that of today's migrations, and the catalog it
    makes is the one they make, table for table and index for index."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from monalia.catalog.schema import sqlite_head_script
    from monalia.catalog.schema_dump import dump_sqlite_head

    assert sqlite_head_script() == dump_sqlite_head(), (
        "alembic/sqlite_head.sql is not what the migrations make: "
        "run `python -m monalia.catalog.schema_dump` to write it again"
    )

    def schema(url):
        catalog = Catalog.connect(url)
        with catalog.engine.connect() as connection:
            rows = connection.execute(
                text("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
            ).all()
            version = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        catalog.close()
        return rows, version

    made = f"sqlite:///{tmp_path / 'made.sqlite'}"
    migrated = f"sqlite:///{tmp_path / 'migrated.sqlite'}"
    program = (
        "import sys; from monalia.catalog.database import Catalog; "
        f"Catalog.open({made!r}).close(); print('alembic' in sys.modules)"
    )
    loaded = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert loaded.stdout.strip() == "False", loaded.stdout + loaded.stderr
    Catalog.connect(migrated).upgrade()
    assert schema(made) == schema(migrated)

    # several commands making one new catalog at once: one makes it, the others use it
    racing = f"sqlite:///{tmp_path / 'racing.sqlite'}"
    with ThreadPoolExecutor(4) as pool:
        opened = list(pool.map(lambda _: Catalog.open(racing), range(4)))
    assert all(catalog.schema_status().up_to_date for catalog in opened)
    assert schema(racing) == schema(migrated)


def test_old_catalog_is_refused_until_upgraded(catalog_url):
    old = Catalog.connect(catalog_url)
    old.upgrade("0001")
    with pytest.raises(CatalogError) as refused:
        Catalog.open(catalog_url)
    assert "0001" in str(refused.value) and "monalia db upgrade" in str(refused.value)
    tables_before = set(inspect(old.engine).get_table_names())
    assert "predictions" not in tables_before, "refusing must not have changed the catalog"
    old.upgrade()
    upgraded = Catalog.open(catalog_url)
    assert upgraded.schema_status().up_to_date
    assert "predictions" in inspect(upgraded.engine).get_table_names()
    old.close()
    upgraded.close()


def test_catalog_from_a_newer_monalia_is_refused(catalog_url):
    catalog = Catalog.open(catalog_url)
    with catalog.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(CatalogError, match="newer monalia"):
        Catalog.open(catalog_url)
    with pytest.raises(CatalogError, match="newer monalia"):
        catalog.upgrade()
    catalog.close()


def test_database_that_is_not_a_catalog_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'other.sqlite'}"
    catalog = Catalog.connect(url)
    with catalog.engine.begin() as connection:
        connection.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
    with pytest.raises(CatalogError, match="not a monalia catalog"):
        Catalog.open(url)
    with pytest.raises(CatalogError, match="not a monalia catalog"):
        catalog.upgrade()


def test_unreachable_database_is_one_clear_error():
    with pytest.raises(CatalogError, match="cannot open catalog"):
        Catalog.open("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")


def test_password_is_never_shown():
    with pytest.raises(CatalogError) as error:
        Catalog.open("postgresql+psycopg://nobody:s3cr3tpw@127.0.0.1:1/none")
    assert "s3cr3tpw" not in str(error.value)


def test_predictions_written_in_bulk_read_back_as_written_and_roll_back_whole(catalog_url):
    """A binary COPY into the model's partition on PostgreSQL, executemany on SQLite: the same
    scores, classes, times and transaction."""
    from datetime import UTC, datetime, timedelta, timezone

    import numpy as np
    from sqlalchemy import func, select

    from monalia.catalog.bulk import prepare_model, write_scores
    from monalia.catalog.models import ImageRow, ModelRow, PredictionRow, RecordRow

    catalog = Catalog.open(catalog_url)
    uris = [f"urn:c{k}" for k in range(5)]
    with catalog.session() as session:
        now = datetime.now(UTC)
        records = [
            RecordRow(
                source="s",
                source_id=f"r{n}",
                iri=f"urn:r{n}",
                content_hash="h",
                first_seen=now,
                last_seen=now,
            )
            for n in range(2)
        ]
        session.add_all(records)
        session.flush()
        images = [
            ImageRow(record_id=record.id, url=f"https://img/{record.id}.jpg", position=0)
            for record in records
        ]
        model = ModelRow(name="m", trainer="t", classes=[{"uri": u} for u in uris], created_at=now)
        session.add_all([*images, model])
        session.flush()
        model_id = model.id
        image_ids = [image.id for image in images]
        record_ids = [record.id for record in records]
    table = prepare_model(catalog.engine, model_id, uris)
    if catalog.engine.dialect.name == "postgresql":
        assert table == f"predictions_m{model_id}"  # the model's own partition
    # a time given in another zone is stored as the same instant in UTC
    paris = datetime(2026, 12, 1, 22, 0, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    scores = np.array([[k / 10 for k in range(5)], [1 - k / 10 for k in range(5)]])
    with catalog.session() as session:
        write_scores(
            session, table, model_id, image_ids, record_ids, ["a", "b"], scores, None, paris
        )
    with catalog.session() as session:
        stored = session.execute(
            select(
                PredictionRow.image_id,
                PredictionRow.class_uri,
                PredictionRow.score,
                PredictionRow.scored_at,
                PredictionRow.image_sha256,
            ).order_by(PredictionRow.image_id, PredictionRow.class_uri)
        ).all()
    assert [(image, uri, score) for image, uri, score, _, _ in stored] == [
        (image, uris[k], scores[row, k]) for row, image in enumerate(image_ids) for k in range(5)
    ]
    assert {at for *_, at, _ in stored} == {paris.astimezone(UTC)}
    assert [sha for *_, sha in stored] == ["a"] * 5 + ["b"] * 5

    # written again: replaced, not added; and a transaction that fails leaves the rows as they were
    with catalog.session() as session:
        write_scores(
            session,
            table,
            model_id,
            image_ids[:1],
            record_ids[:1],
            ["c"],
            scores[:1] / 2,
            None,
            paris,
        )
    with pytest.raises(RuntimeError), catalog.session() as session:
        write_scores(
            session, table, model_id, image_ids, record_ids, ["d", "d"], scores * 0, None, paris
        )
        raise RuntimeError("killed before the commit")
    with catalog.session() as session:
        assert session.scalar(select(func.count()).select_from(PredictionRow)) == 10
        halved = session.scalars(
            select(PredictionRow.score)
            .where(PredictionRow.image_id == image_ids[0])
            .order_by(PredictionRow.class_index)
        ).all()
    assert halved == [k / 20 for k in range(5)]
