"""The SQL sink on SQLite and on the PostgreSQL server: tables made by its migration, one row
per (record, model, class) matching the catalog however often it is published, and stale rows
gone when the catalog loses an image."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, delete, inspect, select, text
from support.scored_catalog import MODEL, build_scored_catalog, planted_scores

from monalia.catalog.models import ImageRow, PredictionRow

SINK = """
[sinks.db]
plugin = "sql"
url = "{url}"
chunk_rows = 25
"""


@pytest.fixture
def sink_url(catalog_url):
    """The sink's database: a SQLite file, or a fresh schema on the PostgreSQL server."""
    return catalog_url


def own_catalog(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'own-catalog.sqlite'}"


def rows_in(url: str) -> dict[tuple[str, str], float]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT record_iri, class_uri, score, model FROM monalia_scores")
        ).all()
    engine.dispose()
    assert {row.model for row in rows} <= {MODEL}
    pairs = [(row.record_iri, row.class_uri) for row in rows]
    assert len(pairs) == len(set(pairs)), "one row per (record, model, class)"
    return {(row.record_iri, row.class_uri): row.score for row in rows}


def test_sql_rows_match_the_catalog_after_every_publish(tmp_path, sink_url, cli):
    catalog = build_scored_catalog(
        tmp_path, own_catalog(tmp_path), cli, extra=SINK.format(url=sink_url)
    )
    planted = planted_scores(catalog)
    for _ in range(2):
        result = cli("enrich", "--publish-only", project=tmp_path)
        assert result.exit_code == 0, result.output
        assert rows_in(sink_url) == pytest.approx(planted)

    engine = create_engine(sink_url)
    names = set(inspect(engine).get_table_names())
    assert {"monalia_scores", "monalia_models", "monalia_triples", "monalia_sink_version"} <= names
    with engine.connect() as connection:
        (model,) = connection.execute(text("SELECT name, classes FROM monalia_models")).all()
    engine.dispose()
    assert model.name == MODEL

    # the catalog loses an image and a score changes: the next publish follows both
    with catalog.session() as session:
        gone = session.scalars(select(ImageRow.id).limit(1)).one()
        session.execute(delete(ImageRow).where(ImageRow.id == gone))
        # as the record store does when an image leaves its record: its scores go with it
        session.execute(delete(PredictionRow).where(PredictionRow.image_id == gone))
        first = session.execute(
            select(PredictionRow.image_id, PredictionRow.class_uri).limit(1)
        ).one()
        session.execute(
            PredictionRow.__table__.update()
            .where(
                PredictionRow.image_id == first.image_id,
                PredictionRow.class_uri == first.class_uri,
            )
            .values(score=0.123)
        )
    result = cli("enrich", "--publish-only", project=tmp_path)
    assert result.exit_code == 0, result.output
    now = planted_scores(catalog)
    assert len(now) == len(planted) - 3
    assert rows_in(sink_url) == pytest.approx(now)


def test_records_published_to_sql_replace_their_graph(tmp_path, sink_url, cli):
    build_scored_catalog(
        tmp_path, own_catalog(tmp_path), cli, count=5, extra=SINK.format(url=sink_url)
    )
    for _ in range(2):
        result = cli("publish", "--sink", "db", project=tmp_path)
        assert result.exit_code == 0, result.output
    engine = create_engine(sink_url)
    with engine.connect() as connection:
        graphs = connection.execute(
            text("SELECT graph, COUNT(*) AS n FROM monalia_triples GROUP BY graph")
        ).all()
        titles = (
            connection.execute(
                text(
                    "SELECT object FROM monalia_triples "
                    "WHERE predicate = '<http://purl.org/dc/terms/title>'"
                )
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert [row.graph for row in graphs] == ["urn:monalia:graph/records/collection"]
    assert sorted(titles) == sorted(f'"Œuvre {n}"' for n in range(5))


def test_a_password_in_the_url_is_refused(tmp_path, cli):
    build_scored_catalog(tmp_path, own_catalog(tmp_path), cli, count=2)
    with (tmp_path / "monalia.toml").open("a", encoding="utf-8") as project:
        project.write(SINK.format(url="postgresql+psycopg://curator:s3cret@127.0.0.1/test"))
    # refused as soon as the project is read, whatever the command
    for command in (("enrich", "--publish-only"), ("publish",), ("runs",)):
        result = cli(*command, project=tmp_path)
        assert result.exit_code == 2, command
        assert "s3cret" not in result.output
        assert "password_env" in result.output


def test_enrich_can_publish_the_records_with_the_scores(tmp_path, cli):
    sink_url = f"sqlite:///{tmp_path / 'sink.sqlite'}"
    catalog = build_scored_catalog(
        tmp_path,
        own_catalog(tmp_path),
        cli,
        count=4,
        extra=SINK.format(url=sink_url) + "\n[enrich]\nrecords = true\n",
    )
    result = cli("enrich", "--publish-only", project=tmp_path)
    assert result.exit_code == 0, result.output
    engine = create_engine(sink_url)
    with engine.connect() as connection:
        records = connection.execute(
            text(
                "SELECT COUNT(*) FROM monalia_triples WHERE predicate = "
                "'<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>' "
                "AND object = '<http://ns.inria.fr/monalia/Record>'"
            )
        ).scalar()
    engine.dispose()
    assert records == 4
    assert rows_in(sink_url) == pytest.approx(planted_scores(catalog))
