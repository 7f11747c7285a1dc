#!/usr/bin/env python3
"""bench/query.py: search, noise and silence over 30,000 notices x 40 scores, as a user runs them.

Builds a project the way `monalia enrich` leaves it: an embedded store holding a records graph of
30,000 notices (titles, references, landing pages, subjects as thesaurus concepts and as bare
subject texts, narrower terms among them) and a model graph with one image per notice scored on
40 classes, with the curation bands; a catalog that registers the model and its dataset (the
concepts each class covers, as the SKOS labeler expands them) and holds a few hundred runs.
A few annotations are planted wrong (noise) and a few missing (silence). The catalog also holds
the records, their images, the dataset and a set of out-of-sample scores for the model, with the
confident-learning findings `monalia train --folds` stores with them: `report noise` and
`report silence` run by their default method (confident) as on a project trained with folds.

What is timed, each --repeat times, the commands interleaved:
- from a cold process, as a user types them: `monalia search CLASS` (a different class each
  time), `monalia report noise`, `monalia report silence` (all classes, the default table and
  the default method, confident), the same reports with `--method threshold`, `monalia
  plugins`, `monalia runs`, `monalia --help`: wall time from the process's start to its exit;
- in process (what the queries alone cost, imports and project done): search for each of the
  40 classes (the first one opening the store), the noise and silence reports, findings
  described, each with a fresh curation as a command has.
There is no reference: the targets are absolute medians, <= 0.5 s from a cold process for
search, noise and silence (both methods), <= 0.3 s for plugins, runs and --help. Each criterion is printed met or not;
the last line's ratio is the worst criterion's.

Usage: .venv/bin/python bench/query.py [--notices N] [--classes C] [--repeat R] [--server]
       [--keep DIR]
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from benchlib import (  # noqa: E402
    MONALIA,
    Criterion,
    Samples,
    alternate,
    compile_bytecode,
    timed_process,
    verdict,
)

from monalia.api.plugin import PluginContext  # noqa: E402
from monalia.curation.findings import Curation, CurationClass, Mentions  # noqa: E402
from monalia.rdf.mentions import mention_triples, mentions_graph_iri  # noqa: E402
from monalia.rdf.scores import (  # noqa: E402
    ImageScores,
    ModelClass,
    ModelInfo,
    model_graph_iri,
    model_iri,
    model_triples,
)
from monalia.rdf.terms import record_triples, records_graph_iri  # noqa: E402

BASE = "urn:monalia:"
TARGET_S = 0.5  # search, noise, silence from a cold process
TARGET_LIGHT_S = 0.3  # plugins, runs
RUNS = 300  # past runs in the catalog, for `monalia runs`
SEARCH_LIMIT = 20
THESAURUS = "http://data.culture.fr/thesaurus/resource/ark:/67717/T523-"
NOTICE = "https://jocondelab.iri-research.org/data/notice/"
OTHER_SUBJECTS = 300  # concepts the records mention that no class covers
NOISE_RATE = 0.02  # annotations the images do not show
SILENCE_RATE = 0.05  # classes an image shows that its record does not mention


def classes_of(count: int) -> list[CurationClass]:
    classes = []
    for n in range(count):
        uri = f"{THESAURUS}{n}"
        narrower = [f"{THESAURUS}{n}-{part}" for part in ("a", "b")]
        classes.append(
            CurationClass(
                uri=uri,
                label=f"classe {n}",
                concepts=frozenset([uri, *narrower]),
                labels=frozenset([f"classe {n}", f"classe {n} a", f"classe {n} b"]),
                threshold=0.5,
                noise_below=0.1,
                silence_above=0.9,
            )
        )
    return classes


def build(notices: int, classes: list[CurationClass], seed: int = 0):
    """Record rows and image scores: what the catalog would hold after labelling and enriching."""
    rng = random.Random(seed)
    mentions = Mentions(classes)
    rows, images = [], []
    scored_at = datetime(2026, 1, 2, tzinfo=UTC)
    for n in range(notices):
        shown = set(rng.sample(range(len(classes)), rng.choice((1, 1, 2, 2, 3))))
        subjects = []
        mentioned = set()
        for index in shown:
            if rng.random() < SILENCE_RATE:
                continue  # shown but not mentioned: silence
            mentioned.add(index)
            cls = classes[index]
            part = rng.choice(("", "", " a", " b"))
            concept = cls.uri + ("-" + part.strip() if part else "")
            label = f"{cls.label}{part}"
            if rng.random() < 0.3:  # a subject text with no concept, as older notices have
                subjects.append(SimpleNamespace(uri=None, label=label, lang="fr"))
            else:
                subjects.append(SimpleNamespace(uri=concept, label=label, lang="fr"))
        for other in rng.sample(range(OTHER_SUBJECTS), 2):
            subjects.append(
                SimpleNamespace(uri=f"{THESAURUS}x{other}", label=f"autre {other}", lang="fr")
            )
        noisy = {index for index in mentioned if rng.random() < NOISE_RATE}
        iri = f"{NOTICE}{n:08d}"
        url = f"https://img.example.org/joconde/{n:08d}.jpg"
        rows.append(
            SimpleNamespace(
                iri=iri,
                source_id=f"{n:08d}",
                source="jocondelab",
                title=f"Notice {n}",
                creators=[f"Peintre {n % 97}"],
                date=None,
                date_start=1600 + n % 300,
                date_end=None,
                institution="musée",
                rights=None,
                landing_page=f"https://www.pop.culture.gouv.fr/notice/joconde/{n:08d}",
                images=[SimpleNamespace(url=url, iiif_service=None)],
                subjects=subjects,
            )
        )
        scores = {}
        for index, cls in enumerate(classes):
            if index in shown and index not in noisy:
                scores[cls.uri] = 0.5 + 0.5 * rng.random()
            elif index in noisy:
                scores[cls.uri] = 0.08 * rng.random()
            else:
                scores[cls.uri] = 0.6 * rng.random() ** 3
        mentioned = mentions.of((subject.uri, subject.label) for subject in subjects)
        images.append(ImageScores(n, iri, n, url, None, 7, scored_at, scores, mentioned))
    return rows, images


def out_of_sample_scores(images: list[ImageScores], seed: int = 1) -> list[dict[str, float]]:
    """What fold models that never saw an image would score: the model's scores, jittered."""
    rng = random.Random(seed)
    return [
        {uri: min(1.0, max(0.0, score + rng.gauss(0, 0.05))) for uri, score in image.scores.items()}
        for image in images
    ]


def write_store(folder: Path, rows, images, model: ModelInfo) -> tuple[int, str]:
    from monalia.plugins.sinks.embedded_store import EmbeddedStoreSettings, EmbeddedStoreSink

    sink = EmbeddedStoreSink(
        settings=EmbeddedStoreSettings(path=str(folder / "store")),
        context=PluginContext("store", folder, folder, BASE),
    )
    records = records_graph_iri(BASE, "jocondelab")
    written = sink.publish([(records, (t for row in rows for t in record_triples(row)))])[records]
    graph = model_graph_iri(BASE, model.name)
    header = list(model_triples(model, BASE, 7, datetime(2026, 1, 3, tzinfo=UTC)))
    written += sink.publish_model(graph, model, header, images, BASE)
    # the mention index, as enrich writes it with the model's graph
    index = mentions_graph_iri(BASE, model.name)
    pairs = ((image.record_iri, image.mentioned) for image in images if image.mentioned)
    triples = mention_triples(index, model_iri(BASE, model.name), pairs)
    written += sink.publish([(index, triples)])[index]
    return written, graph


def concept_labels(cls: CurationClass) -> dict[str, list[str]]:
    """Each concept a class covers with its label, as the label stage keeps them."""
    return {
        concept: [cls.label + concept.removeprefix(cls.uri).replace("-", " ")]
        for concept in cls.concepts
    }


def write_catalog(
    folder: Path,
    model: ModelInfo,
    classes: list[CurationClass],
    images: list[ImageScores] | None = None,
    url: str | None = None,
) -> str:
    """The catalog `monalia train --folds 5` and `monalia enrich` leave: the records and their
    images, the dataset (the concepts each class covers, each image's labels), the model with
    its thresholds and curation bands, its out-of-sample scores with the confident-learning
    findings stored, past runs (without `images`: the dataset, the model and the runs only). In
    a SQLite file in `folder` unless `url` names another (empty) catalog."""

    from monalia.catalog.database import Catalog
    from monalia.catalog.models import (
        DatasetMemberRow,
        DatasetRow,
        ImageRow,
        ModelRow,
        RecordRow,
        RunRow,
        utcnow,
    )

    url = url or f"sqlite:///{folder / 'catalog.sqlite'}"
    catalog = Catalog.open(url)
    now = utcnow()
    with catalog.session() as session:
        if images is not None:
            session.execute(
                RecordRow.__table__.insert(),
                [
                    {
                        "id": image.record_id + 1,
                        "source": "jocondelab",
                        "source_id": f"{image.record_id:08d}",
                        "iri": image.record_iri,
                        "creators": [],
                        "content_hash": "0" * 64,
                        "first_seen": now,
                        "last_seen": now,
                    }
                    for image in images
                ],
            )
            session.execute(
                ImageRow.__table__.insert(),
                [
                    {
                        "id": image.image_id + 1,
                        "record_id": image.record_id + 1,
                        "position": 0,
                        "url": image.image_url,
                        "is_main": True,
                        "status": "fetched",
                    }
                    for image in images
                ],
            )
        dataset = DatasetRow(
            name="bench-dataset",
            hash="0" * 64,
            classes=[{"uri": c.uri, "label": c.label} for c in classes],
            settings={},
            created_at=now,
            class_concepts={c.uri: concept_labels(c) for c in classes},
        )
        session.add(dataset)
        session.flush()
        if images is not None:
            session.execute(
                DatasetMemberRow.__table__.insert(),
                [
                    {
                        "dataset_id": dataset.id,
                        "image_id": image.image_id + 1,
                        "record_id": image.record_id + 1,
                        "split": "train",
                        "labels": sorted(image.mentioned),
                    }
                    for image in images
                ],
            )
        session.add(
            ModelRow(
                name=model.name,
                trainer="cnn",
                backbone=model.backbone,
                dataset_id=dataset.id,
                classes=[{"uri": c.uri, "label": c.label, "threshold": 0.5} for c in classes],
                thresholds={c.uri: c.threshold for c in classes},
                metrics={
                    "curation": {
                        c.uri: {"noise_below": c.noise_below, "silence_above": c.silence_above}
                        for c in classes
                    }
                },
                card={},
                path=None,
                created_at=now,
            )
        )
        if images is not None:
            store_out_of_sample(session, model, classes, images, dataset.id, now)
        for n in range(RUNS):
            session.add(
                RunRow(
                    stage=("harvest", "images", "label", "train", "enrich")[n % 5],
                    plugin="bench",
                    target="bench",
                    settings={},
                    status="done",
                    started_at=now,
                    ended_at=now,
                    heartbeat_at=now,
                    host="bench",
                    pid=1,
                    seen=n,
                    new=n,
                )
            )
    catalog.engine.dispose()
    return url


def store_out_of_sample(session, model: ModelInfo, classes, images, dataset_id: int, now) -> None:
    """The model's out-of-sample scores and what confident learning found in them, as
    `monalia train --folds 5` stores them."""
    import numpy as np

    from monalia.catalog.models import ConfidentFindingRow, ModelRow, ScoredImageRow
    from monalia.catalog.reader import SCORE_SET_KIND, score_set_name
    from monalia.curation.confident_learning import ScoreSet, issue_rows

    uris = [c.uri for c in classes]
    oos = out_of_sample_scores(images)
    found = ScoreSet(
        score_set_name(model.name, 5),
        [(i.image_id + 1, i.record_iri, i.image_url, sorted(i.mentioned)) for i in images],
        np.array([[row[uri] for uri in uris] for row in oos]),
        np.array([[uri in i.mentioned for uri in uris] for i in images], dtype=int),
    )
    issues = issue_rows(found, uris)
    counts = {kind: sum(r.kind == kind for r in issues) for kind in ("noise", "silence")}
    score_set = ModelRow(
        name=found.name,
        trainer="cnn",
        backbone=model.backbone,
        dataset_id=dataset_id,
        classes=[{"uri": c.uri, "label": c.label} for c in classes],
        thresholds={},
        metrics={},
        card={"kind": SCORE_SET_KIND, "model": model.name, "confident_findings": counts},
        path=None,
        created_at=now,
    )
    session.add(score_set)
    session.flush()
    session.execute(
        ScoredImageRow.__table__.insert(),
        [
            {
                "model_id": score_set.id,
                "image_id": i.image_id + 1,
                "record_id": i.record_id + 1,
                "scored_at": now,
            }
            for i in images
        ],
    )
    session.execute(
        ConfidentFindingRow.__table__.insert(),
        [
            {
                "score_set_id": score_set.id,
                "kind": r.kind,
                "class_uri": r.class_uri,
                "image_id": r.image_id,
                "rank": r.rank,
                "score": r.score,
            }
            for r in issues
        ],
    )
    print(
        f"out-of-sample findings stored: {counts['noise']:,} noise, {counts['silence']:,} silence"
    )


def write_project(folder: Path, catalog_url: str) -> Path:
    path = folder / "monalia.toml"
    path.write_text(
        f'[project]\ncatalog = "{catalog_url}"\nbase_iri = "{BASE}"\n\n'
        '[sinks.store]\nplugin = "embedded-store"\npath = "store"\n',
        encoding="utf-8",
    )
    return path


def timed(work) -> tuple[float, object]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def measure(
    client, graph: str, model_name: str, classes: list[CurationClass], repeat: int
) -> dict[str, Samples]:
    """Seconds of each command's queries over an open store, findings described (by the
    threshold method: the confident findings are the catalog's, read as the reports read
    them; the in-process figures are the store's share)."""
    index = mentions_graph_iri(BASE, model_name)

    # each command starts afresh, as the CLI does: nothing is kept from an earlier one
    def search(cls):
        curation = Curation(client, graph, classes, mentions_graph=index)
        findings = curation.search(cls, limit=SEARCH_LIMIT)
        curation.describe(findings)
        return findings

    def report(kind):
        curation = Curation(client, graph, classes, mentions_graph=index)
        findings = getattr(curation, kind)()
        curation.describe(findings)
        return findings

    # no warm-up: the first search pays for opening the store's files, as a command does
    results = {"search": Samples("search", "s")}
    for cls in classes:
        seconds, _ = timed(lambda cls=cls: search(cls))
        results["search"].values.append(seconds)
    for kind in ("noise", "silence"):
        results[kind] = Samples(kind, "s")
        for _ in range(repeat):
            seconds, _ = timed(lambda kind=kind: report(kind))
            results[kind].values.append(seconds)
    return results


def cold_commands(project: Path, classes: list[CurationClass], repeat: int) -> dict[str, Samples]:
    """Each command in a fresh process, as typed at a terminal, interleaved with the others."""
    turn = iter(range(10**9))

    def command(*args: str):
        def run() -> float:
            seconds, done = timed_process([MONALIA, "-p", str(project), *args])
            if not done.stdout.strip():
                raise RuntimeError(f"monalia {' '.join(args)} printed nothing")
            return seconds

        return run

    def search() -> float:  # a different class each time: nothing is cached between them
        cls = classes[next(turn) % len(classes)]
        return command("search", cls.label)()

    return alternate(
        {
            "monalia search CLASS": search,
            "monalia report noise": command("report", "noise"),
            "monalia report silence": command("report", "silence"),
            "monalia report noise --method threshold": command(
                "report", "noise", "--method", "threshold"
            ),
            "monalia report silence --method threshold": command(
                "report", "silence", "--method", "threshold"
            ),
            "monalia plugins": command("plugins"),
            "monalia runs": command("runs"),
            "monalia --help": command("--help"),
        },
        repeat,
        "s",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=30_000)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--server", action="store_true", help="also query an Oxigraph server")
    parser.add_argument("--keep", type=Path, help="build the project in DIR and keep it")
    args = parser.parse_args()

    from monalia.rdf.local_store import LocalSparqlClient

    classes = classes_of(args.classes)
    model = ModelInfo(
        name="bench-efficientnet_lite0",
        classes=tuple(ModelClass(c.uri, c.label, 0.5) for c in classes),
        backbone="efficientnet_lite0",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        bands=True,
    )
    criteria: list[Criterion] = []
    figures = []
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        folder = Path(tmp)
        if args.keep:
            folder = args.keep
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        started = time.perf_counter()
        rows, images = build(args.notices, classes)
        triples, graph = write_store(folder, rows, images, model)
        project = write_project(folder, write_catalog(folder, model, classes, images))
        del rows, images
        seconds = time.perf_counter() - started
        # what is left of the generated collection would slow every garbage collection the
        # in-process queries trigger; a command starts with a small heap
        gc.collect()
        print(
            f"store: {triples:,} triples ({args.notices:,} notices x {args.classes} scores) "
            f"written in {seconds:.1f} s"
        )
        print(compile_bytecode())
        print("cold processes:", file=sys.stderr)
        for name, samples in cold_commands(project, classes, args.repeat).items():
            target = (
                TARGET_S
                if name.startswith(("monalia search", "monalia report"))
                else TARGET_LIGHT_S
            )
            print(f"{name}, cold process: {samples.spread()}")
            criteria.append(
                Criterion(f"{name} (cold process, median)", samples.median, target, True, "s")
            )
            figures.append(f"{name.removeprefix('monalia ')} {samples.median:.2f} s")

        stores = {"embedded store": lambda: LocalSparqlClient(folder / "store")}
        server = None
        if args.server:
            from support.servers import OxigraphServer, oxigraph_binary

            binary = oxigraph_binary()
            if binary is None:
                raise SystemExit("the oxigraph server is not installed (pip install oxigraph)")
            server = OxigraphServer(binary)
            with (folder / "all.nq").open("wb") as dump:
                import pyoxigraph as ox

                ox.Store.read_only(str(folder / "store")).dump(dump, ox.RdfFormat.N_QUADS)
            import requests

            with (folder / "all.nq").open("rb") as body:
                requests.post(
                    server.store_url,
                    data=body,
                    headers={"Content-Type": "application/n-quads"},
                    timeout=3600,
                ).raise_for_status()

            def remote():
                from monalia.net.http import SparqlClient

                return SparqlClient(server.query_url)

            stores["oxigraph server"] = remote
        try:
            for where, client in stores.items():
                results = measure(client(), graph, model.name, classes, args.repeat)
                for kind, samples in results.items():
                    print(f"{where}, in process: {kind} {samples.spread(3)}")
                    criteria.append(
                        Criterion(
                            f"{kind} in process, {where}", samples.median, TARGET_S, True, "s"
                        )
                    )
        finally:
            if server is not None:
                server.stop()
    print(
        verdict(
            "query",
            criteria,
            f"cold-process medians: {', '.join(figures)}; "
            f"{args.notices:,} notices x {args.classes} scores",
        )
    )


if __name__ == "__main__":
    main()
