"""Curators' decisions on findings, kept as an append-only history in the catalog.

A finding is one record and one class, met as noise (the model says the annotated class is not
there), silence (the model sees a class the metadata does not mention) or a search result. The
curator accepts it (the model is right), rejects it (the metadata is right) or skips it. Each
decision, and each undo, is a new row: a reviewer's effective decision is the latest one not
undone, and across reviewers the latest effective decision counts, the others being kept and
shown as a disagreement when they differ.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from monalia.catalog.models import RecordRow, ReviewDecisionRow, utcnow
from monalia.errors import ConfigError

KINDS = ("noise", "silence", "search", "duplicate", "region", "teach")
# a "duplicate" decision is about two records (the second in `class_uri`): accept = the same
# picture, reject = two different ones; it changes no labels. A "region" decision is a box a
# curator drew where the class is seen (`region`); it is kept apart from the findings' verdicts.
# A "teach" decision answers whether a record shows a class a curator teaches (`monalia teach`):
# accept = it does, reject = it does not
REGION = "region"
TEACH = "teach"
DECISIONS = ("accept", "reject", "skip")
UNDO = "undo"
MAX_COMMENT = 2000
BATCH = 500


def claim_of(kind: str) -> str:
    """What the model claims in a finding of this kind: the class is absent (noise) or present."""
    return "absent" if kind == "noise" else "present"


@dataclass(frozen=True)
class Decision:
    id: int
    record_iri: str
    class_uri: str
    class_label: str | None
    kind: str
    decision: str
    comment: str | None
    reviewer: str
    model_name: str | None
    score: float | None
    image_url: str | None
    method: str | None
    annotated: bool | None
    decided_at: datetime
    region: tuple[int, int, int, int] | None = None  # kind "region": left, top, width, height

    @property
    def claim(self) -> str:
        return claim_of(self.kind)

    @property
    def present(self) -> bool | None:
        """Whether the image shows the class, as decided; None for a skip."""
        if self.decision == "accept":
            return self.claim == "present"
        if self.decision == "reject":
            return self.claim == "absent"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "record": self.record_iri,
            "class": self.class_uri,
            "class_label": self.class_label,
            "kind": self.kind,
            "decision": self.decision,
            "present": self.present,
            "comment": self.comment,
            "reviewer": self.reviewer,
            "model": self.model_name,
            "score": self.score,
            "image": self.image_url,
            "method": self.method,
            "annotated": self.annotated,
            "decided_at": self.decided_at.isoformat(timespec="seconds"),
            "region": list(self.region) if self.region else None,
        }


@dataclass
class FindingReview:
    """Where the decisions on one (record, class) stand."""

    record_iri: str
    class_uri: str
    by_reviewer: dict[str, Decision] = field(default_factory=dict)

    @property
    def latest(self) -> Decision | None:
        """The latest effective decision of any reviewer (a skip included)."""
        return max(self.by_reviewer.values(), key=lambda d: d.id, default=None)

    @property
    def verdict(self) -> Decision | None:
        """The decision that counts for learning and export: the latest accept or reject."""
        decided = [d for d in self.by_reviewer.values() if d.decision != "skip"]
        return max(decided, key=lambda d: d.id, default=None)

    @property
    def disputed(self) -> bool:
        """Reviewers' effective decisions say different things about the image."""
        return len({d.present for d in self.by_reviewer.values() if d.present is not None}) > 1

    def hides(self, kind: str) -> bool:
        """Whether a finding of `kind` is already decided: the same claim was judged. A finding
        that claims the opposite (the model changed its mind) is shown again."""
        latest = self.latest
        return latest is not None and latest.claim == claim_of(kind)


def _decision(row: ReviewDecisionRow) -> Decision:
    return Decision(
        row.id,
        row.record_iri,
        row.class_uri,
        row.class_label,
        row.kind,
        row.decision,
        row.comment,
        row.reviewer,
        row.model_name,
        row.score,
        row.image_url,
        row.method,
        row.annotated,
        row.decided_at,
        tuple(int(v) for v in row.region) if row.region else None,
    )


def record_decision(
    catalog,
    *,
    record_iri: str,
    class_uri: str,
    kind: str,
    decision: str,
    reviewer: str,
    class_label: str | None = None,
    comment: str | None = None,
    model_id: int | None = None,
    model_name: str | None = None,
    score: float | None = None,
    image_url: str | None = None,
    method: str | None = None,
    annotated: bool | None = None,
    region: tuple[int, int, int, int] | None = None,
) -> Decision:
    """Append a decision (or an undo) on a finding; return it as stored. A "region" decision
    (accept) carries the box the curator drew, in the image's pixels."""
    if kind not in KINDS:
        raise ConfigError(f"unknown finding kind {kind!r}: one of {', '.join(KINDS)}")
    if decision not in (*DECISIONS, UNDO):
        raise ConfigError(f"unknown decision {decision!r}: one of {', '.join(DECISIONS)}, undo")
    reviewer = reviewer.strip()
    if not reviewer:
        raise ConfigError("a decision needs a reviewer")
    comment = (comment or "").strip()[:MAX_COMMENT] or None
    if kind == REGION:
        region = checked_region(region)
    elif region is not None:
        raise ConfigError("only a region decision carries a box")
    with catalog.session() as session:
        record_id = session.scalar(select(RecordRow.id).where(RecordRow.iri == record_iri))
        row = ReviewDecisionRow(
            record_id=record_id,
            record_iri=record_iri,
            class_uri=class_uri,
            class_label=class_label,
            kind=kind,
            decision=decision,
            comment=comment,
            reviewer=reviewer[:200],
            model_id=model_id,
            model_name=model_name,
            score=None if score is None else float(score),
            image_url=image_url,
            method=method,
            annotated=annotated,
            region=list(region) if region is not None else None,
            decided_at=utcnow(),
        )
        session.add(row)
        session.commit()
        return _decision(row)


def undo_decision(catalog, record_iri: str, class_uri: str, reviewer: str, kind: str) -> bool:
    """Withdraw the reviewer's effective decision on the finding, bringing back the one before
    it; False when the reviewer has none."""
    review = reviews(catalog, [(record_iri, class_uri)]).get((record_iri, class_uri))
    if review is None or reviewer not in review.by_reviewer:
        return False
    record_decision(
        catalog,
        record_iri=record_iri,
        class_uri=class_uri,
        kind=kind,
        decision=UNDO,
        reviewer=reviewer,
    )
    return True


def _replay(rows: Iterable[Any]) -> dict[tuple[str, str], FindingReview]:
    """Rows (or `Decision`s) in id order -> where each finding's decisions stand."""
    stacks: dict[tuple[str, str, str], list[Decision]] = defaultdict(list)
    for row in rows:  # in id order
        if row.kind == REGION:  # boxes are not verdicts on a finding
            continue
        stack = stacks[row.record_iri, row.class_uri, row.reviewer]
        if row.decision == UNDO:
            if stack:
                stack.pop()
        else:
            stack.append(_decision(row))
    found: dict[tuple[str, str], FindingReview] = {}
    for (record, cls, reviewer), stack in stacks.items():
        if stack:
            review = found.setdefault((record, cls), FindingReview(record, cls))
            review.by_reviewer[reviewer] = stack[-1]
    return found


def reviews(
    catalog, pairs: Iterable[tuple[str, str]] | None = None
) -> dict[tuple[str, str], FindingReview]:
    """The effective decisions per (record IRI, class URI): of every finding, or of `pairs`."""
    with catalog.session() as session:
        if pairs is None:
            rows = session.scalars(select(ReviewDecisionRow).order_by(ReviewDecisionRow.id)).all()
            return _replay(rows)
        wanted = sorted(set(pairs))
        records = sorted({record for record, _ in wanted})
        rows = []
        for start in range(0, len(records), BATCH):
            rows.extend(
                session.scalars(
                    select(ReviewDecisionRow).where(
                        ReviewDecisionRow.record_iri.in_(records[start : start + BATCH])
                    )
                ).all()
            )
    rows.sort(key=lambda row: row.id)
    keep = set(wanted)
    return {key: value for key, value in _replay(rows).items() if key in keep}


def checked_region(region) -> tuple[int, int, int, int]:
    """A box as four whole numbers: left and top at least 0, width and height at least 1."""
    try:
        values = tuple(int(v) for v in region)
    except (TypeError, ValueError):
        raise ConfigError("a region is four whole numbers: left, top, width, height") from None
    if len(values) != 4 or values[0] < 0 or values[1] < 0 or values[2] < 1 or values[3] < 1:
        raise ConfigError("a region is left, top (0 or more), width, height (1 or more)")
    if max(values) > 1_000_000:
        raise ConfigError("a region's numbers are pixels of the image: at most 1,000,000")
    return values  # type: ignore[return-value]


def region_corrections(catalog, record_iri: str | None = None) -> list[Decision]:
    """The latest box each reviewer drew for each record, class and image (undo withdraws a
    reviewer's latest), oldest first."""
    query = select(ReviewDecisionRow).where(ReviewDecisionRow.kind == REGION)
    if record_iri is not None:
        query = query.where(ReviewDecisionRow.record_iri == record_iri)
    with catalog.session() as session:
        rows = session.scalars(query.order_by(ReviewDecisionRow.id)).all()
    stacks: dict[tuple[str, str, str | None, str], list[Decision]] = defaultdict(list)
    for row in rows:
        stack = stacks[row.record_iri, row.class_uri, row.image_url, row.reviewer]
        if row.decision == UNDO:
            if stack:
                stack.pop()
        elif row.region:
            stack.append(_decision(row))
    return sorted((stack[-1] for stack in stacks.values() if stack), key=lambda d: d.id)


def history(catalog, record_iri: str) -> list[Decision]:
    """Every decision and undo on a record's findings, oldest first."""
    with catalog.session() as session:
        rows = session.scalars(
            select(ReviewDecisionRow)
            .where(ReviewDecisionRow.record_iri == record_iri)
            .order_by(ReviewDecisionRow.id)
        ).all()
        return [_decision(row) for row in rows]


def decision_count(catalog) -> int:
    from sqlalchemy import func

    with catalog.session() as session:
        return int(session.scalar(select(func.count()).select_from(ReviewDecisionRow)) or 0)
