"""Teach a class from a few examples (`monalia teach`, the workbench's Teach pages).

A curator names a class the thesaurus cannot feed yet (a label, optionally a concept URI) and
gives a few records that show it. A logistic regression over the stored image vectors (the
`[similarity]` embedder's, one per record) ranks the collection in a second or two; the records
it is least sure of are asked first (uncertainty sampling: the answers that move the boundary
most), each answer retrains, and the ranking follows. Answers are review decisions of kind
"teach" on the class's URI, so they keep the reviewers' history and undo like any other; `monalia
label` adds every taught class with its positives, and the next `train` learns it.

Records nobody answered are not known negatives. The model is fitted on the answers and, so
that a handful of positives does not make everything look positive, on a random sample of the
unanswered records as weak negatives (a fiftieth of an answer's weight each): most of a collection
does not show any one class.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select

from monalia.catalog.models import RecordRow, ReviewDecisionRow, TaughtClassRow, utcnow
from monalia.catalog.reviews import TEACH, FindingReview, record_decision, reviews
from monalia.errors import ConfigError

WEAK_NEGATIVES = 2000  # unanswered records sampled as weak negatives at each fit
WEAK_WEIGHT = 0.02  # their weight, against 1 for an answer (bench/teach chose it)
STRENGTH = 10.0  # the inverse of the regularisation (scikit-learn's C; bench/teach chose it)
SEED = 0


@dataclass(frozen=True)
class TaughtClass:
    id: int
    uri: str
    label: str
    created_by: str


def _slug(text: str) -> str:
    """A label as a URI segment: "Cheval dessiné" -> "cheval-dessine"."""
    import unicodedata

    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:80] or "class"


def taught_classes(catalog) -> list[TaughtClass]:
    with catalog.session() as session:
        rows = session.scalars(select(TaughtClassRow).order_by(TaughtClassRow.id)).all()
        return [TaughtClass(r.id, r.uri, r.label, r.created_by) for r in rows]


def find_taught(catalog, name: str) -> TaughtClass:
    """A taught class by its label (any case), URI or number."""
    name = name.strip()
    classes = taught_classes(catalog)
    for cls in classes:
        if name in (cls.uri, str(cls.id)) or cls.label.lower() == name.lower():
            return cls
    known = ", ".join(c.label for c in classes) or "none yet (`monalia teach new LABEL`)"
    raise ConfigError(f"no taught class {name!r}: the classes taught are {known}")


def create_class(catalog, base_iri: str, label: str, reviewer: str, uri: str | None = None):
    """A new class to teach; its URI minted under the project's base IRI unless given."""
    from monalia.rdf.terms import check_iri

    label = " ".join(label.split())
    if not label:
        raise ConfigError("a class needs a label")
    if len(label) > 200:
        raise ConfigError("a class's label is at most 200 characters")
    if uri:
        try:
            check_iri(uri, "the class")
        except Exception as exc:  # RecordError: a URI that cannot be published
            raise ConfigError(str(exc)) from None
    uri = uri or f"{base_iri}class/{_slug(label)}"
    for cls in taught_classes(catalog):
        if cls.uri == uri or cls.label.lower() == label.lower():
            raise ConfigError(f"a class {cls.label!r} ({cls.uri}) is already taught")
    with catalog.session() as session:
        row = TaughtClassRow(uri=uri, label=label, created_by=reviewer, created_at=utcnow())
        session.add(row)
        session.commit()
        return TaughtClass(row.id, row.uri, row.label, row.created_by)


def answer(
    catalog, cls: TaughtClass, record_iri: str, shows: bool | None, reviewer: str, comment=None
) -> FindingReview:
    """Store whether the record shows the class (None: withdraw the reviewer's answer)."""
    from monalia.catalog.reviews import undo_decision

    with catalog.session() as session:
        if session.scalar(select(RecordRow.id).where(RecordRow.iri == record_iri)) is None:
            raise ConfigError(f"no record {record_iri[:200]!r} in the catalog")
    if shows is None:
        undo_decision(catalog, record_iri, cls.uri, reviewer, TEACH)
    else:
        record_decision(
            catalog,
            record_iri=record_iri,
            class_uri=cls.uri,
            class_label=cls.label,
            kind=TEACH,
            decision="accept" if shows else "reject",
            reviewer=reviewer,
            comment=comment,
            method="teach",
        )
    found = reviews(catalog, [(record_iri, cls.uri)])
    return found.get((record_iri, cls.uri)) or FindingReview(record_iri, cls.uri)


def answers(catalog, cls: TaughtClass) -> dict[str, bool]:
    """Record IRI -> whether it shows the class, by each record's verdict."""
    with catalog.session() as session:
        rows = session.scalars(
            select(ReviewDecisionRow)
            .where(ReviewDecisionRow.class_uri == cls.uri)
            .order_by(ReviewDecisionRow.id)
        ).all()
    from monalia.catalog.reviews import _replay

    return {
        record: review.verdict.present
        for (record, _), review in _replay(rows).items()
        if review.verdict is not None and review.verdict.present is not None
    }


@dataclass
class Space:
    """One vector per record (its first fetched image with a vector), normalised."""

    records: list[str]  # record IRIs
    images: list[str]  # the image URL each vector is of
    vectors: np.ndarray
    row_of: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self.row_of = {record: row for row, record in enumerate(self.records)}


def record_space(catalog, project, progress=None, say=None) -> Space:
    """The collection's records in the `[similarity]` embedder's vector space, embedding the
    fetched images that have no vector yet (kept for the next time)."""
    from monalia.similarity.near_duplicates import record_vectors
    from monalia.similarity.vectors import normalise

    _found, chosen, vectors = record_vectors(catalog, project, progress, say)
    return Space(
        [image.record for image in chosen],
        [image.url for image in chosen],
        normalise(vectors) if len(chosen) else np.zeros((0, 1), dtype=np.float32),
    )


class Learner:
    """A linear model of one class over a record space, refitted on every answer."""

    def __init__(self, space: Space, seed: int = SEED):
        self.space = space
        self.rng = np.random.default_rng(seed)

    def fit(self, given: dict[str, bool]) -> np.ndarray:
        """Every record's probability of showing the class, from the answers `given`."""
        from sklearn.linear_model import LogisticRegression

        rows = {self.space.row_of[r]: v for r, v in given.items() if r in self.space.row_of}
        positives = [row for row, shows in rows.items() if shows]
        if not positives:
            raise ConfigError("the class has no example yet: give a record that shows it")
        n = len(self.space.records)
        unanswered = np.setdiff1d(np.arange(n), np.fromiter(rows, dtype=int, count=len(rows)))
        weak = (
            self.rng.choice(unanswered, size=min(WEAK_NEGATIVES, len(unanswered)), replace=False)
            if len(unanswered)
            else np.zeros(0, dtype=int)
        )
        chosen = np.concatenate([np.fromiter(rows, dtype=int, count=len(rows)), weak])
        target = np.concatenate(
            [np.array([int(v) for v in rows.values()], dtype=int), np.zeros(len(weak), dtype=int)]
        )
        weight = np.concatenate([np.ones(len(rows)), np.full(len(weak), WEAK_WEIGHT)])
        if target.min() == target.max():  # one class only: nothing to separate
            return self.similarity(positives)
        model = LogisticRegression(C=STRENGTH, max_iter=500)
        model.fit(self.space.vectors[chosen], target, sample_weight=weight)
        return model.predict_proba(self.space.vectors)[:, 1]

    def similarity(self, positives: list[int]) -> np.ndarray:
        """Cosine similarity to the nearest example, mapped to [0, 1]."""
        sims = self.space.vectors @ self.space.vectors[positives].T
        return (sims.max(axis=1) + 1) / 2

    @staticmethod
    def least_sure(scores: np.ndarray, answered: set[int], count: int) -> list[int]:
        """The unanswered rows whose probability is nearest 0.5, the least sure first."""
        order = np.argsort(np.abs(scores - 0.5), kind="stable")
        return [int(row) for row in order if int(row) not in answered][:count]


@dataclass
class Lesson:
    """Where teaching a class stands: the answers, every record's score, what to ask next."""

    cls: TaughtClass
    given: dict[str, bool]
    scores: np.ndarray
    space: Space
    asks: list[int]  # rows, least sure first

    @property
    def positives(self) -> int:
        return sum(self.given.values())

    @property
    def negatives(self) -> int:
        return sum(not v for v in self.given.values())

    def ranking(self, limit: int | None = None, answered: bool = True) -> list[int]:
        """Rows best first (with or without the records already answered)."""
        order = [int(row) for row in np.argsort(-self.scores, kind="stable")]
        if not answered:
            known = {self.space.row_of[r] for r in self.given if r in self.space.row_of}
            order = [row for row in order if row not in known]
        return order[:limit] if limit else order


def lesson(catalog, cls: TaughtClass, space: Space, asks: int = 12) -> Lesson:
    given = answers(catalog, cls)
    learner = Learner(space)
    scores = learner.fit(given)
    answered = {space.row_of[r] for r in given if r in space.row_of}
    return Lesson(cls, given, scores, space, learner.least_sure(scores, answered, asks))


def taught_summary(catalog) -> list[dict]:
    """Each taught class with how many answers say it shows the class and how many not."""
    return [
        {
            "id": cls.id,
            "label": cls.label,
            "uri": cls.uri,
            "positives": sum(given.values()),
            "negatives": sum(not v for v in given.values()),
            "created_by": cls.created_by,
        }
        for cls, given in taught_labels(catalog)
    ]


def taught_labels(catalog) -> list[tuple[TaughtClass, dict[str, bool]]]:
    """Every taught class with its answers, for `monalia label`."""
    return [(cls, answers(catalog, cls)) for cls in taught_classes(catalog)]
