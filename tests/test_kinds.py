"""Labeler and trainer base classes: the flow they own around what a plugin writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from monalia import Labeler, Subject, Trainer, hookimpl
from monalia.api.labeler import ClassRequest, SubjectMatch, TargetClass
from monalia.api.registry import PluginRegistry, get_plugin_manager
from monalia.api.sink import Sink
from monalia.api.trainer import DatasetSpec, LoadOptions, Predictor, Sample, TrainedModel

HORSE = "http://data.culture.fr/thesaurus/resource/ark:/67717/T523-2037"
TREE = "urn:example:tree"


class KeywordLabeler(Labeler):
    """Classes by exact label or URI."""

    name = "keywords"

    def prepare(self, thesaurus, request):
        return [TargetClass(HORSE, "cheval"), TargetClass(TREE, "arbre")]

    def classes_for(self, subjects):
        by_label = {"cheval": HORSE, "arbre": TREE}
        match = SubjectMatch()
        for subject in subjects:
            uri = subject.uri if subject.uri in (HORSE, TREE) else by_label.get(subject.label or "")
            if uri:
                match.classes.add(uri)
            else:
                match.unmatched.append(subject)
        return match


class MajorityTrainer(Trainer):
    """Predicts each class's training frequency."""

    name = "majority"

    def fit(self, dataset, output_dir, options):
        train = dataset.splits["train"]
        frequency = {
            c["uri"]: sum(c["uri"] in sample.labels for sample in train) / len(train)
            for c in dataset.classes
        }
        weights = output_dir / "weights.json"
        weights.write_text(json.dumps(frequency))
        return TrainedModel(
            weights=weights, thresholds=dict.fromkeys(frequency, 0.5), metrics={"map": 0.5}
        )


class KindsPlugin:
    @hookimpl
    def register_labelers(self):
        return [KeywordLabeler]

    @hookimpl
    def register_trainers(self):
        return [MajorityTrainer]


@pytest.fixture
def registry():
    pm = get_plugin_manager(load_entry_points=False)
    pm.register(KindsPlugin())
    return PluginRegistry(pm)


def test_labeler_assigns_classes_and_counts_unmatched_labels(registry):
    labeler = registry.get("labeler", "keywords").cls()
    records = [
        (1, [Subject(label="cheval"), Subject(label="écurie")]),
        (2, [Subject(uri=HORSE), Subject(label="arbre")]),
        (3, [Subject(label="écurie")]),
    ]
    classes = labeler.prepare(None, ClassRequest(("cheval", "arbre")))
    result = labeler.label(classes, records)
    assert result.assignments == {1: {HORSE}, 2: {HORSE, TREE}}
    assert result.unmatched == {(None, "écurie"): 2}
    assert result.records_without_class == {3}
    assert result.per_class() == {HORSE: 2, TREE: 1}
    assert result.records_seen == 3


def test_labeler_returning_an_unknown_class_is_an_error():
    class Sloppy(KeywordLabeler):
        def classes_for(self, subjects):
            return SubjectMatch(classes={"urn:not-a-target"})

    sloppy = Sloppy()
    with pytest.raises(ValueError, match="not targets"):
        sloppy.label(sloppy.prepare(None, ClassRequest(())), [(1, [Subject(label="x")])])


def test_trainer_writes_weights_config_and_model_card(registry, tmp_path):
    trainer = registry.get("trainer", "majority").cls()
    dataset = DatasetSpec(
        name="test",
        hash="abc123",
        classes=[{"uri": HORSE, "label": "cheval"}, {"uri": TREE, "label": "arbre"}],
        splits={"train": [Sample(Path("a.jpg"), (HORSE,)), Sample(Path("b.jpg"), (HORSE, TREE))]},
    )
    card = trainer.train(dataset, tmp_path / "model")
    written = json.loads((tmp_path / "model" / "model_card.json").read_text())
    assert written == card
    assert card["dataset_hash"] == "abc123" and card["trainer"] == "majority"
    assert [c["label"] for c in card["classes"]] == ["cheval", "arbre"]
    assert card["thresholds"] == {HORSE: 0.5, TREE: 0.5}
    assert "monalia" in card["versions"] and "python" in card["versions"]
    assert json.loads((tmp_path / "model" / "weights.json").read_text()) == {HORSE: 1.0, TREE: 0.5}
    assert (tmp_path / "model" / "config.json").is_file()


class FrequencyPredictor(Predictor):
    """Scores every image with its class's training frequency."""

    def __init__(self, frequency: dict[str, float]):
        super().__init__(list(frequency), 32, (0.5,) * 3, (0.5,) * 3, batch_size=2)
        self.frequency = frequency

    def score_batch(self, pixels):
        assert pixels.dtype == np.uint8 and pixels.shape[1:] == (3, 32, 32)
        return np.tile(np.array(list(self.frequency.values()), np.float32), (len(pixels), 1))


class ScoringMajorityTrainer(MajorityTrainer):
    name = "scoring-majority"

    def load(self, folder, options):
        return FrequencyPredictor(json.loads((folder / "weights.json").read_text()))


def test_a_trainers_predictor_reads_files_and_reports_the_unreadable_ones(tmp_path):
    from PIL import Image

    trainer = ScoringMajorityTrainer()
    dataset = DatasetSpec(
        name="test",
        hash="abc123",
        classes=[{"uri": HORSE, "label": "cheval"}, {"uri": TREE, "label": "arbre"}],
        splits={"train": [Sample(Path("a.jpg"), (HORSE,)), Sample(Path("b.jpg"), (HORSE, TREE))]},
    )
    trainer.train(dataset, tmp_path / "model")
    predictor = trainer.load(tmp_path / "model", LoadOptions("cpu"))
    good = tmp_path / "good.jpg"
    Image.new("RGB", (80, 50), "red").save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    advanced = []

    class Progress:
        def advance(self, n):
            advanced.append(n)

    chunks = list(
        predictor.score_chunks(
            [("abc", [good, bad, good], [None] * 3), ("d", [good], [None])], Progress()
        )
    )
    assert [list(chunk.indices) for chunk in chunks] == [[0, 2], [0]]
    assert [chunk.unreadable for chunk in chunks] == [[1], []]
    assert chunks[0].scores.tolist() == [[1.0, 0.5], [1.0, 0.5]]
    assert sum(advanced) == 4, "progress counts every image, read or not"


def test_a_trainer_that_cannot_load_says_so(tmp_path):
    with pytest.raises(NotImplementedError, match="trainer majority cannot score its models"):
        MajorityTrainer().load(tmp_path, LoadOptions())


class MemoryStoreSink(Sink):
    """Keeps nothing; answers queries from a Turtle file."""

    name = "memory-store"
    query_priority = 5

    def write_chunk(self, graph, triples):
        pass

    def query_client(self):
        from monalia.rdf.local_store import LocalSparqlClient

        return LocalSparqlClient(self.context.path("answers.ttl"))


class SinkPlugin:
    @hookimpl
    def register_sinks(self):
        return [MemoryStoreSink]


def test_search_asks_the_sink_that_can_answer_whatever_its_name(tmp_path):
    from monalia.curation.session import report_client
    from monalia.errors import ConfigError
    from monalia.project import parse_project

    pm = get_plugin_manager()
    pm.register(SinkPlugin())
    registry = PluginRegistry(pm)
    (tmp_path / "answers.ttl").write_text("<urn:a> <urn:b> <urn:c> .\n")
    head = '[project]\ncatalog = "sqlite:///c.sqlite"\n'
    files = '[sinks.files]\nplugin = "turtle"\npath = "out/{graph}.ttl"\n'
    mine = '[sinks.mine]\nplugin = "memory-store"\n'
    store = '[sinks.store]\nplugin = "embedded-store"\n'

    project = parse_project(head + files + store + mine, tmp_path / "monalia.toml", registry)
    client = report_client(project, None)  # the lowest query_priority answers
    assert client.endpoint == str(tmp_path / "answers.ttl")
    assert client.select("SELECT ?s WHERE { ?s ?p ?o }")[0]["s"]["value"] == "urn:a"
    with pytest.raises(ConfigError, match="store: no such store folder"):
        report_client(project, "store")  # a name wins: the embedded store, not yet written

    only_files = parse_project(head + files, tmp_path / "monalia.toml", registry)
    with pytest.raises(ConfigError, match="nothing to query"):
        report_client(only_files, None)
    with pytest.raises(ConfigError, match="sink files \\(turtle\\) cannot be queried"):
        report_client(only_files, "files")
