"""Precision as curators see it: what the review decisions say about the model's claims.

Every finding a curator decided is a claim the model made about one record and one class: noise
claims the annotated class is not in the picture, silence and search results claim a class is.
An accepted finding is a claim that held, a rejected one a claim that did not; skips say nothing.
Precision is the share that held, with a 95 % Wilson score interval (it stays inside [0, 1] and
is honest for the small counts a review gives). Findings are counted once, by their verdict (the
latest accept or reject of any reviewer).

Decisions made on a stratified random sample (`sample_for_review`, method "sample") are counted
apart: a curator who reviews the best scores first measures the best scores, while an equal
share of every score band measures the class's detections as a whole.

Where several reviewers decided the same finding, their agreement is measured: the share of
findings on which they all agree, Fleiss' kappa over every finding two or more reviewers decided
(the form for a varying number of raters per finding), and Cohen's kappa for each pair of
reviewers over the findings both decided.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from monalia.catalog.reviews import FindingReview, reviews

Z_95 = 1.959963984540054  # the normal quantile of a two-sided 95 % interval
SAMPLE = "sample"  # the `method` of a decision made on a stratified random sample
CLAIM_KINDS = ("noise", "silence", "search")
ALL = ""  # the class_uri of a row that counts every class


def wilson(held: int, reviewed: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion `held / reviewed`; (0, 1) with nothing."""
    if reviewed <= 0:
        return 0.0, 1.0
    p = held / reviewed
    denominator = 1 + z * z / reviewed
    centre = (p + z * z / (2 * reviewed)) / denominator
    half = z * math.sqrt(p * (1 - p) / reviewed + z * z / (4 * reviewed * reviewed)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def cohen_kappa(pairs: list[tuple[bool, bool]]) -> float | None:
    """Cohen's kappa of two raters' yes/no answers on the same items; None when undefined
    (no items, or both raters gave one answer only and agree on it everywhere)."""
    n = len(pairs)
    if not n:
        return None
    observed = sum(a == b for a, b in pairs) / n
    yes_a = sum(a for a, _ in pairs) / n
    yes_b = sum(b for _, b in pairs) / n
    expected = yes_a * yes_b + (1 - yes_a) * (1 - yes_b)
    if expected >= 1:
        return None
    return (observed - expected) / (1 - expected)


def fleiss_kappa(items: list[tuple[int, int]]) -> float | None:
    """Fleiss' kappa over items rated yes/no by two or more raters each: `items` holds
    (yes count, no count). With varying raters per item, each item's agreement is the share of
    agreeing rater pairs and the chance agreement comes from the pooled answers."""
    rated = [(yes, no) for yes, no in items if yes + no >= 2]
    if not rated:
        return None
    agreement = [
        (yes * (yes - 1) + no * (no - 1)) / ((yes + no) * (yes + no - 1)) for yes, no in rated
    ]
    observed = sum(agreement) / len(agreement)
    answers = sum(yes + no for yes, no in rated)
    share_yes = sum(yes for yes, _ in rated) / answers
    expected = share_yes**2 + (1 - share_yes) ** 2
    if expected >= 1:
        return None
    return (observed - expected) / (1 - expected)


@dataclass
class PrecisionRow:
    """Precision of one kind of claim for one class (or every class: `class_uri` empty)."""

    class_uri: str
    class_label: str
    kind: str  # noise, silence, search or sample
    reviewed: int = 0
    held: int = 0

    @property
    def precision(self) -> float | None:
        return self.held / self.reviewed if self.reviewed else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.held, self.reviewed)

    def as_dict(self) -> dict[str, Any]:
        low, high = self.interval
        precision = self.precision
        return {
            "class": self.class_uri or None,
            "class_label": self.class_label,
            "kind": self.kind,
            "reviewed": self.reviewed,
            "held": self.held,
            "precision": None if precision is None else round(precision, 4),
            "low": round(low, 4) if self.reviewed else None,
            "high": round(high, 4) if self.reviewed else None,
        }


# the fields of a precision row in JSON and CSV, in this order
PRECISION_FIELDS = ["class", "class_label", "kind", "reviewed", "held", "precision", "low", "high"]


@dataclass
class PairAgreement:
    first: str
    second: str
    findings: int
    agreed: int
    kappa: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "reviewers": [self.first, self.second],
            "findings": self.findings,
            "agreed": self.agreed,
            "kappa": None if self.kappa is None else round(self.kappa, 4),
        }


@dataclass
class Agreement:
    """How far reviewers agree where several decided one finding."""

    findings: int = 0  # decided (accept or reject) by two or more reviewers
    unanimous: int = 0
    fleiss: float | None = None
    pairs: list[PairAgreement] = field(default_factory=list)

    @property
    def share(self) -> float | None:
        return self.unanimous / self.findings if self.findings else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "findings": self.findings,
            "unanimous": self.unanimous,
            "share": None if self.share is None else round(self.share, 4),
            "fleiss_kappa": None if self.fleiss is None else round(self.fleiss, 4),
            "pairs": [pair.as_dict() for pair in self.pairs],
        }


@dataclass
class ReviewStats:
    rows: list[PrecisionRow]  # per class and kind, then per kind over every class
    agreement: Agreement
    decided: int  # findings with a verdict
    reviewers: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "decided": self.decided,
            "reviewers": self.reviewers,
            "precision": [row.as_dict() for row in self.rows],
            "agreement": self.agreement.as_dict(),
        }


def kind_of(review: FindingReview) -> str | None:
    """The kind a finding's verdict counts under: its claim kind, or "sample"."""
    verdict = review.verdict
    if verdict is None or verdict.kind not in CLAIM_KINDS:
        return None
    return SAMPLE if verdict.method == SAMPLE else verdict.kind


def review_stats(
    catalog, labels: dict[str, str] | None = None, model_name: str | None = None
) -> ReviewStats:
    """Precision per class and kind, and the reviewers' agreement, from the catalog's
    decisions (only those made on `model_name`'s findings when given). `labels` names the
    classes (else the label stored with the decisions)."""
    found = reviews(catalog)
    rows: dict[tuple[str, str], PrecisionRow] = {}
    totals: dict[str, PrecisionRow] = {}
    answers: list[dict[str, bool]] = []
    reviewers: set[str] = set()
    decided = 0
    for review in found.values():
        kind = kind_of(review)
        if kind is None:
            continue
        verdict = review.verdict
        if model_name is not None and verdict.model_name != model_name:
            continue
        decided += 1
        label = (labels or {}).get(review.class_uri) or verdict.class_label or review.class_uri
        held = verdict.decision == "accept"
        for row in (
            rows.setdefault((review.class_uri, kind), PrecisionRow(review.class_uri, label, kind)),
            totals.setdefault(kind, PrecisionRow(ALL, "all classes", kind)),
        ):
            row.reviewed += 1
            row.held += held
        present = {
            name: decision.present
            for name, decision in review.by_reviewer.items()
            if decision.present is not None
        }
        reviewers.update(present)
        if len(present) >= 2:
            answers.append(present)
    order = {kind: position for position, kind in enumerate((*CLAIM_KINDS, SAMPLE))}
    ordered = sorted(rows.values(), key=lambda r: (r.class_label.lower(), order[r.kind]))
    ordered += sorted(totals.values(), key=lambda r: order[r.kind])
    return ReviewStats(ordered, agreement_of(answers), decided, sorted(reviewers))


def agreement_of(answers: list[dict[str, bool]]) -> Agreement:
    """Agreement over findings each decided by two or more reviewers (reviewer -> present)."""
    agreement = Agreement(findings=len(answers))
    agreement.unanimous = sum(len(set(given.values())) == 1 for given in answers)
    agreement.fleiss = fleiss_kappa(
        [(sum(given.values()), sum(not v for v in given.values())) for given in answers]
    )
    shared: dict[tuple[str, str], list[tuple[bool, bool]]] = defaultdict(list)
    for given in answers:
        names = sorted(given)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                shared[first, second].append((given[first], given[second]))
    agreement.pairs = [
        PairAgreement(first, second, len(pairs), sum(a == b for a, b in pairs), cohen_kappa(pairs))
        for (first, second), pairs in sorted(shared.items())
    ]
    return agreement


def stratified_sample(
    findings: list, size: int, strata: int = 5, seed: int = 0, score=lambda f: f.score
) -> list:
    """`size` findings drawn at random with an equal share from each score band: the findings
    (best first) are cut into `strata` bands of equal count and the same number is drawn from
    each (proportional allocation), so the sample's precision estimates the precision of every
    finding, not of the best scores. Returned in random order (the order says nothing)."""
    if size <= 0 or not findings:
        return []
    if size >= len(findings):
        chosen = list(findings)
        random.Random(seed).shuffle(chosen)
        return chosen
    ranked = sorted(findings, key=lambda f: -score(f))
    strata = max(1, min(strata, size))
    bounds = [round(i * len(ranked) / strata) for i in range(strata + 1)]
    rng = random.Random(seed)
    chosen = []
    # each band's share of the sample, by its share of the findings, remainders to the
    # largest fractions so the total is exactly `size`
    exact = [(bounds[i + 1] - bounds[i]) * size / len(ranked) for i in range(strata)]
    counts = [int(share) for share in exact]
    for i in sorted(range(strata), key=lambda i: counts[i] - exact[i])[: size - sum(counts)]:
        counts[i] += 1
    for i in range(strata):
        band = ranked[bounds[i] : bounds[i + 1]]
        chosen.extend(rng.sample(band, min(counts[i], len(band))))
    rng.shuffle(chosen)
    return chosen
