"""The ray executor: the image and enrich stages on a Ray cluster (or a local one).

monalia only connects: to the address in ``[executor] address``, else ``$RAY_ADDRESS``, else a
Ray it starts on this machine with ``[executor] cpus``. Ray's cluster launcher or KubeRay does the
provisioning. What every node needs: monalia installed, the catalog reachable at the same URL
(PostgreSQL on a cluster; a SQLite file only on one machine), and the project's data folder at
the same path (a shared file system), since images are read and written there.

Enrich runs as a Ray Data pipeline: the pending images' id range split into shards that workers
read from the catalog in parallel, images decoded on CPU workers exactly as the local loader
decodes them, scored by a pool of model actors (one per GPU where there are GPUs), and the
scores written back by this process a chunk at a time, as the local executor does, so the
outputs are the same and a retried task can neither lose nor duplicate a score.

The image stage runs its crawl shards as Ray tasks (one crawl process each); they report
through a Ray queue, and a shard whose worker dies is retried and fetches what its first
attempt had not stored.
"""

from __future__ import annotations

import os
import queue as stdlib_queue
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from monalia.errors import ConfigError

INSTALL_HINT = "the ray executor needs Ray: pip install 'monalia[ray]'"
TASK_RETRIES = 3  # a crawl shard whose worker died is tried this many more times


def require_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def connect(settings) -> Any:
    """Connect to the configured Ray cluster, or start a local one; return the ray module."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    address = settings.address or os.environ.get("RAY_ADDRESS")
    options: dict[str, Any] = {
        "ignore_reinit_error": True,
        "log_to_driver": False,
        "include_dashboard": False,
        # workers import monalia from this checkout or environment, as the driver does
        "runtime_env": {"env_vars": {"PYTHONWARNINGS": "ignore"}},
    }
    if address:
        options["address"] = address
    else:
        options["num_cpus"] = settings.cpus or os.cpu_count() or 1
        if settings.gpus is not None:
            options["num_gpus"] = settings.gpus
    ray.init(**options)
    return ray


def cluster_resources(ray) -> tuple[int, int]:
    """(CPUs, GPUs) the cluster has."""
    resources = ray.cluster_resources()
    return int(resources.get("CPU", 0)), int(resources.get("GPU", 0))


# -- enrich ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringJob:
    """What every worker needs to read, decode and score the pending images of one model."""

    catalog_url: str
    model_id: int
    trainer: str  # the trainer plugin that made the model, and loads it
    model_folder: str
    data_dir: str
    rescore: bool
    batch_size: int
    device: str  # what the model actors use: "cuda" with GPUs, else "cpu"
    # image vectors kept in the same pass: "" none, "scoring" (the model's own features), or
    # "imagenet" (the ImageNet backbone `embed_backbone` with `embed_weights`)
    embed: str = ""
    embed_backbone: str = "efficientnet_lite0"
    embed_weights: str = "imagenet"


def id_shards(first: int, last: int, shards: int) -> list[dict[str, int]]:
    """[first, last] cut into at most `shards` ranges of ids."""
    shards = max(1, min(shards, last - first + 1))
    step = -(-(last - first + 1) // shards)
    return [
        {"start": start, "end": min(start + step - 1, last)}
        for start in range(first, last + 1, step)
    ]


def read_shard(shard: dict[str, int], job: ScoringJob) -> Iterator[dict[str, Any]]:
    """The pending images of one id range, read from the catalog (a task on a worker)."""
    from sqlalchemy import select

    from monalia.catalog.database import Catalog
    from monalia.catalog.models import ImageRow
    from monalia.catalog.queries import image_file, scorable, unscored

    catalog = Catalog.open(job.catalog_url, create=False)
    query = select(
        ImageRow.id, ImageRow.record_id, ImageRow.path, ImageRow.sha256, ImageRow.url
    ).where(scorable(), ImageRow.id >= shard["start"], ImageRow.id <= shard["end"])
    if not job.rescore:
        query = query.where(unscored(job.model_id))
    with catalog.session() as session:
        rows = session.execute(query.order_by(ImageRow.id)).all()
    catalog.engine.dispose()
    data_dir = Path(job.data_dir)
    for row in rows:
        path = image_file(data_dir, row.path)
        missing = path is None or not path.is_file()
        yield {
            "image_id": row.id,
            "record_id": row.record_id,
            "path": str(path),
            "sha256": row.sha256 or "",
            "url": row.url,
            "error": f"image file is missing: {path}" if missing else "",
        }


def decode_batch(
    batch: dict[str, np.ndarray], input_size: int, similarity_size: int = 0
) -> dict[str, np.ndarray]:
    """Decode a batch of images on a CPU worker, as every predictor expects them; with
    `similarity_size`, also as the ImageNet embedder sees them (`similar_pixels`)."""
    from monalia.learning.image_decode import decode_for_model

    count = len(batch["image_id"])
    pixels = np.zeros((count, 3, input_size, input_size), dtype=np.uint8)
    similar = np.zeros((count, 3, similarity_size, similarity_size), dtype=np.uint8)
    errors = list(batch["error"])
    for k in range(count):
        if errors[k]:
            continue
        try:
            pixels[k] = decode_for_model(Path(batch["path"][k]), input_size)
            if similarity_size:
                from monalia.similarity.embedder import similarity_pixels

                similar[k] = similarity_pixels(Path(batch["path"][k]), similarity_size)
        except Exception:
            errors[k] = f"{batch['path'][k]}: the image could not be decoded"
    out = dict(batch, pixels=pixels, error=np.array(errors, dtype=object))
    if similarity_size:
        out["similar_pixels"] = similar
    return out


class ModelActor:
    """A trained model on one device, loaded by its trainer plugin, scoring decoded batches."""

    def __init__(self, job: ScoringJob):
        from monalia.api.registry import default_registry
        from monalia.api.trainer import LoadOptions

        if job.device == "cpu":
            try:
                import torch

                # one actor per worker CPU: threads beyond it would fight the other actors
                torch.set_num_threads(1)
            except ImportError:  # a trainer that does without torch
                pass
        trainer = default_registry().get("trainer", job.trainer).cls()
        self.predictor = trainer.scorer(
            Path(job.model_folder), LoadOptions(job.device, job.batch_size, 0)
        )
        self.classes = len(self.predictor.classes)
        self.embed = job.embed
        self.embedder = None
        if job.embed == "imagenet":
            from monalia.similarity.embedder import BackboneEmbedder

            self.embedder = BackboneEmbedder(
                job.embed_backbone, job.embed_weights, job.device, job.batch_size
            )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = np.array([not error for error in batch["error"]], dtype=bool)
        scores = np.full((len(ok), self.classes), np.nan, dtype=np.float32)
        vectors = None
        if ok.any():
            pixels = np.ascontiguousarray(batch["pixels"][ok])
            if self.embed == "scoring":  # the model's own features, from the same forward
                found, features = self.predictor.score_and_embed_batch(pixels)
            else:
                found, features = self.predictor.score_batch(pixels), None
            if self.embedder is not None:
                features = self.embedder.embed_batch(
                    np.ascontiguousarray(batch["similar_pixels"][ok])
                )
            scores[ok] = found
            if features is not None:
                vectors = np.full((len(ok), features.shape[1]), np.nan, dtype=np.float32)
                vectors[ok] = features
        out = {k: v for k, v in batch.items() if k not in ("pixels", "similar_pixels")}
        out["scores"] = scores
        if self.embed:
            out["embedding"] = (
                vectors if vectors is not None else np.zeros((len(ok), 0), np.float32)
            )
        return out


def score_on_ray(
    ray, job: ScoringJob, input_size: int, id_range: tuple[int, int], actors: int, gpus: int
) -> Iterator[dict[str, np.ndarray]]:
    """Batches of scored images (ids, scores, errors) as the cluster produces them."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    from ray.data import ActorPoolStrategy, TaskPoolStrategy

    cpus, _ = cluster_resources(ray)
    # Without GPUs the model is the slow part: one actor per CPU, each on most of it, and the
    # light reading and decoding tasks on what is left (Ray counts CPUs, it does not pin them).
    actor_cpus = 0 if gpus else 0.8
    task_cpus = 0.2 if not gpus else 1
    # Ray Data retries a task whose worker died and restarts a dead actor (its defaults);
    # the batches this process receives are each delivered once
    shards = ray.data.from_items(id_shards(id_range[0], id_range[1], max(4, 4 * cpus)))
    rows = shards.flat_map(
        read_shard,
        fn_kwargs={"job": job},
        compute=TaskPoolStrategy(size=max(1, cpus // 2)),
        num_cpus=task_cpus,
    )
    similarity_size = 0
    if job.embed == "imagenet":
        from monalia.learning.backbones import backbone_spec

        similarity_size = backbone_spec(job.embed_backbone).input_size
    decoded = rows.map_batches(
        decode_batch,
        fn_kwargs={"input_size": input_size, "similarity_size": similarity_size},
        batch_size=job.batch_size,
        compute=TaskPoolStrategy(size=max(1, cpus)),
        num_cpus=task_cpus,
    )
    scored = decoded.map_batches(
        ModelActor,
        fn_constructor_args=(job,),
        batch_size=job.batch_size,
        compute=ActorPoolStrategy(size=actors),
        num_gpus=1 if gpus else 0,
        num_cpus=actor_cpus,
    )
    yield from scored.iter_batches(batch_size=None, batch_format="numpy")


# -- images ------------------------------------------------------------------------------------


def crawl_on_ray(ray, jobs: list[Any], inbox) -> list[Any]:
    """Start one Ray task per crawl shard; each forwards its crawl's reports to `inbox` (a Ray
    queue). Returns the tasks' object refs."""

    @ray.remote(num_cpus=1, max_retries=TASK_RETRIES, retry_exceptions=False)
    def crawl_shard(job: dict[str, Any], number: int, inbox) -> str:
        from monalia.executors.crawl_process import CrawlProcess

        crawl = CrawlProcess(replace(job, parent_dies_hard=True))
        status = "interrupted"
        try:
            for message in crawl.messages():
                if "finished" in message:
                    status = message["finished"]
                inbox.put((number, message))
        finally:
            crawl.stop()
            crawl.close()
        return status

    return [crawl_shard.remote(job, number, inbox) for number, job in enumerate(jobs)]


def on_this_node(ray) -> dict[str, Any]:
    """Actor options that keep an actor on the driver's own node, with no CPU of its own: the
    queue the shards report through must not die with a worker node (the rehearsal in
    tests/test_ray_cluster.py killed the node that held it, and the run with it)."""
    try:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node = ray.get_runtime_context().get_node_id()
    except Exception:  # a client connection that cannot say: Ray places it
        return {"num_cpus": 0}
    return {"num_cpus": 0, "scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=False)}


def run_crawls_on_ray(catalog, tracker, jobs: list[Any], settings, progress=None):
    """The image stage's crawl shards as Ray tasks, for the started run `tracker`; the shards
    report through a Ray queue as local crawl processes do through their pipes."""
    from ray.util.queue import Empty, Queue

    from monalia.catalog.run_tracking import DONE, INTERRUPTED
    from monalia.executors.crawl_process import FLUSH_EVERY, count_report

    ray = connect(settings)
    inbox = Queue(actor_options=on_this_node(ray))
    refs = crawl_on_ray(ray, jobs, inbox)
    waiting = list(refs)
    last_flush = time.monotonic()

    def take(timeout: float) -> None:
        try:
            messages = [inbox.get(timeout=timeout)]
            messages += inbox.get_nowait_batch(inbox.qsize())
        except (Empty, stdlib_queue.Empty):
            return
        for _, message in messages:
            count_report(tracker, message)
            if progress is not None and message.get("advance"):
                progress.advance(message["advance"])

    try:
        while waiting:
            _, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=0)
            take(timeout=0.5 if waiting else 0.0)
            if time.monotonic() - last_flush >= FLUSH_EVERY:
                with catalog.session() as session:
                    tracker.flush(session)
                last_flush = time.monotonic()
        time.sleep(0.2)  # the last reports of the last shards
        take(timeout=0.0)
        statuses = []
        for number, ref in enumerate(refs):
            try:
                statuses.append(ray.get(ref))
            except Exception as exc:  # a shard that failed after every retry
                statuses.append(f"shard {number + 1}: {type(exc).__name__}: {exc}")
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise  # the tracker's block records how the run ended
    finally:
        if progress is not None:
            progress.close()
        inbox.shutdown()
    unfinished = [f"shard {n + 1}: {s}" for n, s in enumerate(statuses) if s != DONE]
    if unfinished:
        return tracker.finish(INTERRUPTED, "; ".join(unfinished))
    return tracker.finish(DONE)


# -- cross-fitting -----------------------------------------------------------------------------


def train_folds_on_ray(
    project, trainer, jobs: list[Any], members: list[Any], options, device, train_fold
):
    """Train and score the folds as Ray tasks, one GPU each, with `train_fold(trainer, job,
    members, options, load options)` (`monalia.stages.train.crossfit.train_fold`), yielding each
    fold's result as soon as it is done.

    Each task resumes its fold from the checkpoint in the fold's folder (the shared data
    folder), so a fold whose worker died is trained on from there when Ray retries it.
    """
    from monalia.api.trainer import LoadOptions, TrainOptions

    ray = connect(project.file.executor)

    def run_fold(trainer, job, members, cache_dir, device):
        fold_options = TrainOptions(cache_dir=cache_dir)
        return train_fold(
            trainer, job, members, fold_options, LoadOptions(device, cache_dir=cache_dir)
        )

    remote = ray.remote(num_gpus=1, num_cpus=1, max_retries=TASK_RETRIES)(run_fold)
    shared = ray.put(members)
    waiting = {remote.remote(trainer, job, shared, options.cache_dir, device): job for job in jobs}
    while waiting:
        done, _ = ray.wait(list(waiting), num_returns=1)
        job = waiting.pop(done[0])
        result = ray.get(done[0])
        options.say(f"fold {job.fold + 1}: trained on the Ray cluster")
        yield result
