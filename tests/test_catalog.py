"""The catalog: created at head, checked against its schema, upgraded, refused when newer."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from monalia.catalog import Catalog
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
    """COPY on PostgreSQL, executemany on SQLite: the same rows, times and transaction."""
    from datetime import UTC, datetime, timedelta, timezone

    from sqlalchemy import func, select

    from monalia.catalog.bulk import insert_predictions
    from monalia.catalog.models import ImageRow, ModelRow, PredictionRow, RecordRow

    catalog = Catalog.open(catalog_url)
    with catalog.session() as session:
        now = datetime.now(UTC)
        record = RecordRow(
            source="s",
            source_id="r1",
            iri="urn:r1",
            content_hash="h",
            first_seen=now,
            last_seen=now,
        )
        session.add(record)
        session.flush()
        image = ImageRow(record_id=record.id, url="https://img/1.jpg", position=0, is_main=True)
        model = ModelRow(name="m", trainer="t", classes=[], created_at=datetime.now(UTC))
        session.add_all([image, model])
        session.flush()
        ids = (model.id, image.id, record.id)
    # a time given in another zone is stored as the same instant in UTC
    paris = datetime(2026, 12, 1, 22, 0, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    rows = [(*ids, f"urn:c{k}", k / 10, "abc", None, paris) for k in range(5)]
    with catalog.session() as session:
        insert_predictions(session, rows)
    with catalog.session() as session:
        stored = session.execute(
            select(PredictionRow.class_uri, PredictionRow.score, PredictionRow.scored_at).order_by(
                PredictionRow.class_uri
            )
        ).all()
    assert [(uri, score) for uri, score, _ in stored] == [(f"urn:c{k}", k / 10) for k in range(5)]
    assert {at for _, _, at in stored} == {paris.astimezone(UTC)}

    more = [(*ids, "urn:extra", 0.5, "abc", None, paris)]
    with pytest.raises(RuntimeError), catalog.session() as session:
        insert_predictions(session, more)
        raise RuntimeError("killed before the commit")
    with catalog.session() as session:
        assert session.scalar(select(func.count()).select_from(PredictionRow)) == 5
