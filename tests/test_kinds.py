"""Labeler and trainer base classes: the flow they own around what a plugin writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monalia import Labeler, Subject, Trainer, hookimpl
from monalia.api.labeler import ClassRequest, SubjectMatch, TargetClass
from monalia.api.registry import PluginRegistry, get_plugin_manager
from monalia.api.trainer import DatasetSpec, Sample, TrainedModel

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
