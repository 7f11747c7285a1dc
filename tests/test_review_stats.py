"""Precision as curators see it: Wilson intervals, reviewers' agreement, stratified samples, and
`monalia review stats` over a catalog's decisions."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from monalia.catalog.database import Catalog
from monalia.catalog.models import RecordRow, utcnow
from monalia.catalog.reviews import record_decision
from monalia.curation.review_stats import (
    cohen_kappa,
    fleiss_kappa,
    review_stats,
    stratified_sample,
    wilson,
)


def test_wilson_interval_matches_the_textbook_values_and_stays_in_bounds():
    low, high = wilson(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert wilson(0, 5)[0] == 0.0 and 0 < wilson(0, 5)[1] < 0.5
    assert wilson(5, 5)[1] == 1.0 and 0.5 < wilson(5, 5)[0] < 1
    assert wilson(0, 0) == (0.0, 1.0)
    # more reviews, a narrower interval around the same share
    assert wilson(80, 100)[1] - wilson(80, 100)[0] < high - low


def test_kappas_match_worked_examples():
    # Cohen's worked example: 50 items, yes-yes 20, yes-no 5, no-yes 10, no-no 15
    pairs = [(True, True)] * 20 + [(True, False)] * 5 + [(False, True)] * 10 + [(False, False)] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)
    # Fleiss over two raters is Scott's pi: observed 0.7, pooled yes 0.55 -> 0.3939
    items = [(2, 0)] * 20 + [(1, 1)] * 15 + [(0, 2)] * 15
    assert fleiss_kappa(items) == pytest.approx((0.7 - 0.505) / 0.495)
    assert fleiss_kappa([(3, 0), (0, 3), (2, 0)]) == pytest.approx(1.0)
    assert cohen_kappa([]) is None and fleiss_kappa([(1, 0)]) is None
    assert cohen_kappa([(True, True)] * 4) is None  # no variation: kappa is undefined


def test_a_stratified_sample_draws_every_score_band_alike_and_is_repeatable():
    findings = [SimpleNamespace(score=i / 1000) for i in range(1000)]
    sample = stratified_sample(findings, 50, strata=5, seed=3)
    assert len(sample) == 50 and len({id(f) for f in sample}) == 50
    bands = [sum(1 for f in sample if b / 5 <= f.score < (b + 1) / 5) for b in range(5)]
    assert bands == [10] * 5
    assert [f.score for f in sample] == [f.score for f in stratified_sample(findings, 50, 5, 3)]
    assert [f.score for f in sample] != sorted(f.score for f in sample)  # the order says nothing
    assert len(stratified_sample(findings[:7], 50)) == 7
    assert sum(1 for _ in stratified_sample(findings, 13, strata=5)) == 13


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("MONALIA_CATALOG", raising=False)
    (tmp_path / "monalia.toml").write_text(
        f'[project]\ncatalog = "sqlite:///{tmp_path}/catalog.sqlite"\n', encoding="utf-8"
    )
    catalog = Catalog.open(f"sqlite:///{tmp_path}/catalog.sqlite")
    with catalog.session() as session:
        for n in range(12):
            session.add(
                RecordRow(
                    source="s",
                    source_id=f"r{n}",
                    iri=f"urn:r{n}",
                    content_hash="x",
                    raw={},
                    first_seen=utcnow(),
                    last_seen=utcnow(),
                )
            )
        session.commit()
    return tmp_path, catalog


def decide(catalog, record, cls, kind, decision, reviewer, method=None):
    record_decision(
        catalog,
        record_iri=record,
        class_uri=cls,
        class_label=cls[-1],
        kind=kind,
        decision=decision,
        reviewer=reviewer,
        method=method,
        model_name="m1",
    )


def test_review_stats_counts_verdicts_per_class_and_kind_and_measures_agreement(project):
    folder, catalog = project
    # class A: noise 3 reviewed, 2 held; silence 2 reviewed, 2 held; a sample of 4, 1 held
    for record, decision in (("urn:r0", "accept"), ("urn:r1", "accept"), ("urn:r2", "reject")):
        decide(catalog, record, "urn:A", "noise", decision, "marie")
    for record in ("urn:r3", "urn:r4"):
        decide(catalog, record, "urn:A", "silence", "accept", "marie")
    for record, decision in (
        ("urn:r5", "accept"),
        ("urn:r6", "reject"),
        ("urn:r7", "reject"),
        ("urn:r8", "reject"),
    ):
        decide(catalog, record, "urn:A", "search", decision, "marie", method="sample")
    decide(catalog, "urn:r9", "urn:A", "search", "skip", "marie")  # a skip says nothing
    # two reviewers on the same findings: agree on r0 (noise accept) and r3, not on r1
    decide(catalog, "urn:r0", "urn:A", "noise", "accept", "jean")
    decide(catalog, "urn:r3", "urn:A", "silence", "accept", "jean")
    decide(catalog, "urn:r1", "urn:A", "noise", "reject", "jean")  # the later verdict counts
    stats = review_stats(catalog)
    rows = {(r.class_uri, r.kind): r for r in stats.rows}
    noise = rows["urn:A", "noise"]
    assert (noise.reviewed, noise.held) == (3, 1)  # r1's latest verdict is jean's reject
    assert (rows["urn:A", "silence"].reviewed, rows["urn:A", "silence"].held) == (2, 2)
    sample = rows["urn:A", "sample"]
    assert (sample.reviewed, sample.held) == (4, 1) and sample.interval == wilson(1, 4)
    assert ("urn:A", "search") not in rows
    assert rows["", "noise"].reviewed == 3
    agreement = stats.agreement
    assert (agreement.findings, agreement.unanimous) == (3, 2)
    [pair] = agreement.pairs
    assert (pair.first, pair.second, pair.findings, pair.agreed) == ("jean", "marie", 3, 2)
    assert stats.reviewers == ["jean", "marie"]

    from monalia.cli import cli

    result = CliRunner().invoke(
        cli, ["--project", str(folder), "-q", "review", "stats", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    found = {(r["class"], r["kind"]): r for r in data["precision"]}
    assert found["urn:A", "sample"]["precision"] == 0.25
    assert found["urn:A", "sample"]["low"] == round(wilson(1, 4)[0], 4)
    assert data["agreement"]["findings"] == 3
    table = CliRunner().invoke(cli, ["--project", str(folder), "review", "stats"])
    assert "Cohen's kappa" in table.output and "sample" in table.output
    csv_out = CliRunner().invoke(
        cli, ["--project", str(folder), "-q", "review", "stats", "--format", "csv"]
    )
    assert (
        csv_out.output.splitlines()[0] == "class,class_label,kind,reviewed,held,precision,low,high"
    )
