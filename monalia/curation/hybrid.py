"""The hybrid ranking: the image score fused with what the record's metadata already says.

Each kind of evidence has a reliability, the chance that a record with it shows the class: the
class's own concept or label among its subjects ("class"), a narrower term or another concept the
class covers ("narrower"), the class's label as a word of the title or description ("text"). The
fusion treats the image score as a probability and the evidence as a likelihood ratio (naive
Bayes): in log-odds, ::

    logit(fused) = logit(image score) + log(reliability / (1 - reliability))

so a record with no evidence keeps its image score, evidence never lowers a score (a reliability
is at least 0.5), a mention lifts an uncertain image score a long way and a confident one
little, and a mentioned record the model is sure does not show the class stays low (what the
noise report is for). The reliabilities are `[report] hybrid_weights`; bench/hybrid.py measures
the fused ranking's AP against image-only and text-only rankings.
"""

from __future__ import annotations

import re

from monalia.curation.findings import (
    DC_DESCRIPTION,
    DC_TITLE,
    Curation,
    CurationClass,
    Finding,
    subject_terms,
)
from monalia.rdf.thesaurus import normalize_label

EVIDENCE_KINDS = ("class", "narrower", "text")  # strongest first
DEFAULT_WEIGHTS = {"class": 0.9, "narrower": 0.8, "text": 0.7}


def fuse(image_score: float, evidence: str | None, weights: dict[str, float]) -> float:
    """The image score moved by the evidence's likelihood ratio, in log-odds."""
    if evidence is None:
        return image_score
    score = min(max(image_score, 1e-6), 1.0 - 1e-6)
    weight = weights[evidence]
    odds = score / (1.0 - score) * weight / (1.0 - weight)
    return odds / (1.0 + odds)


WORD = re.compile(r"\w+")


def _words(text: str) -> str:
    """The text's words between spaces, so that a phrase matches whole words only."""
    return " " + " ".join(WORD.findall(normalize_label(text))) + " "


def evidence_of(curation: Curation, cls: CurationClass, records) -> dict[str, str | None]:
    """The strongest evidence each record's metadata gives for the class, or None."""
    details = curation._record_details(records)
    own_labels = {normalize_label(cls.label)}
    narrower_labels = {normalize_label(text) for text in cls.labels} - own_labels
    narrower_concepts = set(cls.concepts) - {cls.uri}
    phrases = [_words(text) for text in {cls.label, *cls.labels} if text.strip()]
    found: dict[str, str | None] = {}
    for record in records:
        values = details.get(record, {})
        uris, texts = subject_terms(values)
        texts = {normalize_label(text) for text in texts}
        if cls.uri in uris or texts & own_labels:
            found[record] = "class"
        elif uris & narrower_concepts or texts & narrower_labels:
            found[record] = "narrower"
        else:
            prose = " ".join(
                value for prop in (DC_TITLE, DC_DESCRIPTION) for _, value in values.get(prop, [])
            )
            words = _words(prose) if prose else ""
            found[record] = "text" if words and any(p in words for p in phrases) else None
    return found


def hybrid_rank(
    curation: Curation,
    cls: CurationClass,
    findings: list[Finding],
    weights: dict[str, float] | None = None,
) -> list[Finding]:
    """The findings re-scored by the fused score, best first; each says its evidence."""
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    evidence = evidence_of(curation, cls, [f.record for f in findings])
    for finding in findings:
        finding.image_score = finding.score
        finding.evidence = evidence.get(finding.record)
        finding.score = fuse(finding.score, finding.evidence, weights)
    return sorted(findings, key=lambda f: (-f.score, f.record))


def hybrid_search(
    curation: Curation,
    cls: CurationClass,
    min_score: float | None = None,
    limit: int | None = None,
    weights: dict[str, float] | None = None,
) -> list[Finding]:
    """Records by the fused score: every record the model scores for the class (from
    `min_score`, default 0: a mention can lift a low image score), best first."""
    found = curation.search(cls, 0.0 if min_score is None else min_score, None)
    ranked = hybrid_rank(curation, cls, found, weights)
    return ranked[:limit] if limit is not None else ranked
