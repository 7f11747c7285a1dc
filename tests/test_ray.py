"""The ray executor on a local Ray cluster (2 CPUs) started by the tests: the same scores as the
local executor, and a worker killed mid-run loses and duplicates nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import rdflib
from sqlalchemy import func, select
from support.drawn_catalog import build_project
from support.processes import kill_one_when, titled
from support.ray_cluster import image_project

from monalia.catalog.models import PredictionRow, RunRow, ScoredImageRow

pytestmark = pytest.mark.slow  # clusters, processes killed, whole pipelines

pytest.importorskip("torch", reason="the train extra is not installed")
ray = pytest.importorskip("ray", reason="the ray extra is not installed")

SETTINGS = """
[sinks.file]
plugin = "turtle"
path = "out/{graph}.ttl"

[enrich]
chunk_size = 16
batch_size = 8
workers = 0

[executor]
cpus = 2
"""


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray cluster of 2 CPUs for the module's tests."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield ray
    ray.shutdown()


def scores(catalog) -> dict[tuple[int, str], float]:
    with catalog.session() as session:
        return {
            (image, uri): score
            for image, uri, score in session.execute(
                select(PredictionRow.image_id, PredictionRow.class_uri, PredictionRow.score)
            )
        }


def published(turtle: str) -> dict[tuple[str, str], float]:
    """Every detection of the published graph: (record, class) -> score as written."""
    graph = rdflib.Graph().parse(data=turtle, format="turtle")
    rows = graph.query(
        """
        PREFIX ml: <http://ns.inria.fr/monalia/>
        SELECT ?record ?concept ?score WHERE {
            ?record ml:imageClassifier [ ml:detected [ a ?concept ; ml:score ?score ] ] .
        }"""
    )
    found = {(str(r), str(c)): float(v) for r, c, v in rows}
    assert found
    return found


def enrich_runs(catalog) -> list[RunRow]:
    with catalog.session() as session:
        rows = session.scalars(
            select(RunRow).where(RunRow.stage == "enrich").order_by(RunRow.id)
        ).all()
        session.expunge_all()
    return rows


@pytest.fixture
def trained(tmp_path, cli):
    catalog_url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    catalog = build_project(tmp_path, catalog_url, cli, count=60, extra=SETTINGS, epochs=1)
    result = cli("train", project=tmp_path)
    assert result.exit_code == 0, result.output
    return tmp_path, catalog


def test_ray_and_local_executors_give_the_same_scores(local_ray, trained, cli):
    folder, catalog = trained
    result = cli("enrich", "--executor", "local", project=folder)
    assert result.exit_code == 0, result.output
    local = scores(catalog)
    local_graph = next((folder / "out").glob("*.ttl")).read_text(encoding="utf-8")
    result = cli("enrich", "--executor", "ray", "--rescore", project=folder)
    assert result.exit_code == 0, result.output
    on_ray = scores(catalog)
    assert on_ray.keys() == local.keys() and len(local) > 0
    assert max(abs(on_ray[key] - local[key]) for key in local) < 1e-5
    ray_graph = next((folder / "out").glob("*.ttl")).read_text(encoding="utf-8")
    # what is published is the same detections; a score written to four decimals may differ by
    # one in the last place where float32 sums in another order (threads, batch boundaries)
    # land on either side of a rounding boundary
    local_published, ray_published = published(local_graph), published(ray_graph)
    assert local_published.keys() == ray_published.keys()
    assert all(abs(ray_published[k] - local_published[k]) <= 0.0001 + 1e-9 for k in local_published)
    same = sum(ray_published[k] == local_published[k] for k in local_published)
    assert same >= 0.95 * len(local_published)
    first, second = enrich_runs(catalog)
    assert (first.settings["executor"], second.settings["executor"]) == ("local", "ray")
    assert second.status == "done" and second.new == first.new


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(local_ray, trained, cli):
    folder, catalog = trained
    cli("enrich", "--executor", "local", project=folder)
    reference = scores(catalog)
    with catalog.session() as session:
        for table in (PredictionRow.__table__, ScoredImageRow.__table__):
            session.execute(table.delete())
    # a Ray worker running the model actors or the map tasks
    killer, killed = kill_one_when(lambda: titled("ray::", "ModelActor", "MapBatches"))
    result = cli("enrich", "--executor", "ray", project=folder)
    killer.join(5)
    assert killed, "no Ray worker was found to kill"
    assert result.exit_code == 0, result.output
    after = scores(catalog)
    assert after.keys() == reference.keys()  # no gap
    with catalog.session() as session:
        duplicates = session.scalar(
            select(func.count()).select_from(
                select(PredictionRow.image_id, PredictionRow.class_uri)
                .group_by(PredictionRow.image_id, PredictionRow.class_uri)
                .having(func.count() > 1)
                .subquery()
            )
        )
    assert duplicates == 0
    assert max(abs(after[key] - reference[key]) for key in reference) < 1e-5
    run = enrich_runs(catalog)[-1]
    assert run.status == "done" and run.new == len({image for image, _ in reference})


def test_without_ray_the_executor_says_how_to_install_it(trained, cli, monkeypatch):
    import builtins

    folder, _ = trained
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    result = cli("enrich", "--executor", "ray", project=folder)
    assert result.exit_code != 0
    assert "pip install 'monalia[ray]'" in result.output


# -- the image stage ---------------------------------------------------------------------------


def fetched_hashes(folder: Path) -> list[str]:
    from monalia.catalog.database import Catalog
    from monalia.catalog.models import ImageRow

    catalog = Catalog.open(f"sqlite:///{folder / 'catalog.sqlite'}")
    with catalog.session() as session:
        return sorted(
            sha
            for (sha,) in session.execute(
                select(ImageRow.sha256).where(ImageRow.status == "fetched")
            )
        )


def test_images_on_ray_match_the_local_executor_and_survive_a_killed_worker(
    local_ray, tmp_path, cli
):
    from support.iiif_server import IiifServer, slow_images

    count = 120

    with IiifServer(extra=slow_images) as server:
        local = image_project(tmp_path / "local", server.url, count)
        on_ray = image_project(tmp_path / "ray", server.url, count)
        for folder in (local, on_ray):
            assert cli("harvest", project=folder).exit_code == 0
        assert cli("images", "--executor", "local", project=local).exit_code == 0
        killer, killed = kill_one_when(
            lambda: titled("ray::crawl_shard"), ready=lambda: len(fetched_hashes(on_ray)) >= 20
        )
        result = cli("images", "--executor", "ray", project=on_ray)
        killer.join(5)
    assert killed, "no crawl task was found to kill"
    assert result.exit_code == 0, result.output
    hashes = fetched_hashes(on_ray)
    assert len(hashes) == count and hashes == fetched_hashes(local)  # same images, same bytes
    files = sorted(p.stem for p in (on_ray / "data" / "images").rglob("*") if p.is_file())
    assert files == hashes  # one file each, nothing partial
    from monalia.catalog.database import Catalog

    catalog = Catalog.open(f"sqlite:///{on_ray / 'catalog.sqlite'}")
    with catalog.session() as session:
        run = session.scalars(select(RunRow).where(RunRow.stage == "images")).one()
    assert run.status == "done" and run.settings["executor"] == "ray"
    assert run.new == count and run.failed == 0


def test_the_ray_actors_keep_the_same_vectors_as_the_local_executor(local_ray, trained, cli):
    """`[similarity] model = "scoring"`: the actors that score also embed, in the same pass."""
    import shutil

    import numpy as np

    from monalia.similarity.vectors import VectorStore

    folder, _catalog = trained
    project_file = folder / "monalia.toml"
    project_file.write_text(
        project_file.read_text(encoding="utf-8") + '\n[similarity]\nmodel = "scoring"\n',
        encoding="utf-8",
    )
    assert cli("enrich", "--executor", "local", project=folder).exit_code == 0
    [stored] = [  # the model's own vectors (label kept the ImageNet backbone's beside them)
        path
        for path in (folder / ".monalia" / "similarity").iterdir()
        if not path.name.startswith("imagenet-")
    ]
    local_keys, local_vectors = VectorStore(stored).load()
    assert len(local_keys) == len(set(local_keys)) > 0
    shutil.rmtree(stored)
    result = cli("enrich", "--executor", "ray", "--rescore", project=folder)
    assert result.exit_code == 0, result.output
    ray_keys, ray_vectors = VectorStore(stored).load()
    assert sorted(ray_keys) == sorted(local_keys)
    order = {key: row for row, key in enumerate(ray_keys)}
    aligned = ray_vectors[[order[key] for key in local_keys]].astype(np.float32)
    cosines = (aligned * local_vectors.astype(np.float32)).sum(axis=1)
    assert cosines.min() > 0.999
