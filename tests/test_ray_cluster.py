"""A rehearsal of a real multi-node Ray cluster on this machine: a head and two worker nodes
started with `ray start` (each its own CPUs and temp folder), a PostgreSQL catalog and one data
folder they all share. `monalia images` and `monalia enrich` run across it as a user runs them,
in processes of their own; one worker node's raylet is killed (SIGKILL) mid-run, and the run
still ends with every image fetched, or scored, exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from support.ray_cluster import RayCluster, image_project

from monalia.catalog.database import Catalog
from monalia.catalog.models import ImageRow, PredictionRow, RunRow

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

pytest.importorskip("torch", reason="the train extra is not installed")
pytest.importorskip("ray", reason="the ray extra is not installed")


@pytest.fixture
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    cluster = RayCluster(root)
    try:
        cluster.start("head", cpus=1, head=True)
        cluster.start("worker-1", cpus=2)
        cluster.start("worker-2", cpus=2)
        yield cluster
    finally:
        cluster.stop()


def monalia(*args: str, project: Path, cluster: RayCluster) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONALIA_", "RAY_"))}
    env.update(cluster.driver_env(), RAY_ADDRESS=cluster.address)
    return subprocess.Popen(
        [sys.executable, "-m", "monalia", "--project", str(project), "-q", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def kill_raylet_when(cluster: RayCluster, node: str, ready) -> tuple[threading.Thread, list[int]]:
    killed: list[int] = []

    def watch() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            if ready():
                pid = cluster.raylet(node)
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, killed


def count(catalog: Catalog, statement) -> int:
    with catalog.session() as session:
        return session.scalar(statement) or 0


def last_run(catalog: Catalog, stage: str) -> RunRow:
    with catalog.session() as session:
        run = session.scalars(
            select(RunRow).where(RunRow.stage == stage).order_by(RunRow.id.desc())
        ).first()
        session.expunge_all()
    return run


SETTINGS = """
[executor]
address = "{address}"
cpus = 4

[enrich]
chunk_size = 8
batch_size = 4
workers = 0
"""


def test_images_across_nodes_survive_a_worker_node_killed_mid_run(
    cluster, tmp_path, postgres_url, cli
):
    """150 pictures, each answered after 50 ms; worker-1's raylet dies after 20 are stored."""
    from support.iiif_server import IiifServer, slow_images

    total = 150
    with IiifServer(extra=slow_images) as server:
        images_project = image_project(
            tmp_path / "images",
            server.url,
            total,
            catalog=postgres_url,
            extra=f'address = "{cluster.address}"\n',
        )
        assert cli("harvest", project=images_project).exit_code == 0
        catalog = Catalog.open(postgres_url)
        fetched = select(func.count()).select_from(ImageRow).where(ImageRow.status == "fetched")
        killer, killed = kill_raylet_when(
            cluster, "worker-1", lambda: count(catalog, fetched) >= 20
        )
        run = monalia("images", "--executor", "ray", project=images_project, cluster=cluster)
        output, _ = run.communicate(timeout=600)
        killer.join(5)
    assert killed, "the worker node's raylet was not killed"
    assert run.returncode == 0, output
    with catalog.session() as session:
        hashes = sorted(
            session.scalars(select(ImageRow.sha256).where(ImageRow.status == "fetched")).all()
        )
    assert len(hashes) == total and len(set(hashes)) == total  # every image, once
    files = sorted(p.stem for p in (images_project / "data" / "images").rglob("*") if p.is_file())
    assert files == hashes  # one file each in the shared folder, nothing partial
    images_run = last_run(catalog, "images")
    assert images_run.status == "done" and images_run.settings["executor"] == "ray"
    assert images_run.new == total and images_run.failed == 0
    assert images_run.seen == (
        images_run.new + images_run.changed + images_run.unchanged + images_run.failed
    )
    catalog.close()


def test_enrich_across_nodes_survives_a_worker_node_killed_mid_run(
    cluster, tmp_path, postgres_url, cli
):
    """A trained model scores 60 images, 8 a chunk; worker-2's raylet dies after 8 are stored."""
    from support.drawn_catalog import build_project

    settings = SETTINGS.format(address=cluster.address)
    enrich_project = tmp_path / "enrich"
    enrich_project.mkdir()
    catalog = build_project(enrich_project, postgres_url, cli, count=60, extra=settings, epochs=1)
    assert cli("train", project=enrich_project).exit_code == 0
    scored = select(func.count(func.distinct(PredictionRow.image_id)))
    killer, killed = kill_raylet_when(cluster, "worker-2", lambda: count(catalog, scored) >= 8)
    run = monalia("enrich", "--executor", "ray", project=enrich_project, cluster=cluster)
    output, _ = run.communicate(timeout=900)
    killer.join(5)
    assert killed, "the worker node's raylet was not killed"
    assert run.returncode == 0, output
    images = count(catalog, select(func.count()).select_from(ImageRow))
    classes = count(catalog, select(func.count(func.distinct(PredictionRow.class_index))))
    assert count(catalog, scored) == images  # no gap
    # exactly once: one row per image and class (the table's key would refuse a second)
    assert count(catalog, select(func.count()).select_from(PredictionRow)) == images * classes
    enrich_run = last_run(catalog, "enrich")
    assert enrich_run.status == "done" and enrich_run.settings["executor"] == "ray"
    assert enrich_run.new == images and enrich_run.failed == 0
    catalog.close()
