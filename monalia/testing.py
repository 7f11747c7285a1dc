"""A contract test every source plugin can run, monalia's own and third-party ones alike.

    from monalia.testing import check_source_contract

    def test_my_source(tmp_path):
        check_source_contract(MySource, {"path": "..."}, tmp_path)

It harvests into a fresh SQLite catalog and checks what every source must do:

- the first run stores valid records (unique IRIs, identifiers, hashes) and reports each
  malformed item with its key (`expect_failed` says how many the input holds);
- a second run finds every record unchanged and adds nothing;
- a run killed in the middle (after some batches were committed) and then run again leaves
  exactly the records of the uninterrupted run: no gap, no duplicate, and the second part
  resumes from the checkpoint instead of starting over.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from monalia.api.plugin import PluginContext
from monalia.api.registry import PluginInfo, PluginOrigin
from monalia.api.source import Source
from monalia.catalog.database import Catalog
from monalia.catalog.models import RecordRow, RunEventRow
from monalia.catalog.run_tracking import DONE, RunInfo
from monalia.project import PluginInstance
from monalia.stages.harvest import harvest


@dataclass
class ContractResult:
    first: RunInfo
    second: RunInfo
    catalog: Catalog
    records: int
    interrupted: RunInfo | None = None
    resumed: RunInfo | None = None


def configure(
    source_class: type[Source],
    settings: dict[str, Any],
    project_dir: Path,
    instance: str = "contract",
) -> PluginInstance:
    """A configured source instance, as the project file would make it."""
    info = PluginInfo("source", source_class.name, source_class, PluginOrigin("test", "-"))
    context = PluginContext(
        instance=instance, project_dir=project_dir, data_dir=project_dir / ".monalia"
    )
    return PluginInstance(
        "source", instance, info, source_class.Settings.model_validate(settings), context
    )


def check_source_contract(
    source_class: type[Source],
    settings: dict[str, Any],
    workdir: Path,
    min_records: int = 1,
    project_dir: Path | None = None,
    expect_failed: int | None = None,
    check_resume: bool = True,
) -> ContractResult:
    """Harvest twice and assert the behaviour every source must have; return what was seen."""
    assert issubclass(source_class, Source), f"{source_class!r} is not a monalia.Source"
    assert source_class.name, f"{source_class.__name__} has no name"
    catalog = Catalog.open(f"sqlite:///{workdir / 'contract.sqlite'}")
    configured = configure(source_class, settings, project_dir or workdir)

    first = harvest(catalog, configured)
    assert first.status == DONE, f"first harvest ended {first.status}: {first.message}"
    stored = first.counts["new"]
    assert stored >= min_records, (
        f"first harvest stored {stored} records, expected >= {min_records}"
    )
    with catalog.session() as session:
        in_catalog = session.scalar(select(func.count()).select_from(RecordRow))
        rows = session.scalars(select(RecordRow)).all()
    assert in_catalog == stored, f"{stored} records reported new but {in_catalog} in the catalog"
    iris = [row.iri for row in rows]
    assert len(set(iris)) == len(iris), "two records share an IRI"
    assert all(row.content_hash and row.source_id for row in rows), "a record lacks id or hash"
    if expect_failed is not None:
        assert first.counts["failed"] == expect_failed, (
            f"{first.counts['failed']} items reported failed, expected {expect_failed}"
        )
    with catalog.session() as session:
        reported = session.scalars(
            select(RunEventRow).where(RunEventRow.run_id == first.id, RunEventRow.level == "error")
        ).all()
    assert len(reported) == first.counts["failed"], "a failed item was counted but not reported"
    assert all(event.item and event.message for event in reported), "a failure lacks its reason"
    reference = {(row.source_id, row.content_hash) for row in rows}

    second = harvest(catalog, configured)
    assert second.status == DONE, f"second harvest ended {second.status}: {second.message}"
    assert second.counts["new"] == 0, f"second harvest added {second.counts['new']} records"
    assert second.counts["changed"] == 0, (
        f"second harvest changed {second.counts['changed']} records"
    )
    assert second.counts["unchanged"] == stored, (
        f"second harvest saw {second.counts['unchanged']} unchanged of {stored}"
    )
    assert second.counts["failed"] == first.counts["failed"], "failures differ between two runs"
    with catalog.session() as session:
        after = session.scalar(select(func.count()).select_from(RecordRow))
    assert after == stored, f"the catalog grew from {stored} to {after} records on a re-run"
    result = ContractResult(first, second, catalog, stored)
    if check_resume and first.counts["seen"] >= 4:
        check_resume_after_kill(source_class, settings, workdir, project_dir, reference, result)
    return result


class Killed(BaseException):
    """Stands for a kill: not an Exception, so nothing on the way can swallow it."""


def check_resume_after_kill(
    source_class: type[Source],
    settings: dict[str, Any],
    workdir: Path,
    project_dir: Path | None,
    reference: set[tuple[str, str]],
    result: ContractResult,
) -> None:
    """Kill a harvest half way (after some committed batches), run it again, compare."""
    seen = result.first.counts["seen"]
    batch = max(1, seen // 4)
    stop_after = seen // 2 + 1

    class Interrupted(source_class):  # type: ignore[misc, valid-type]
        batch_size = batch

        def harvest(self, state, prepare=None):
            for count, outcome in enumerate(super().harvest(state, prepare), start=1):
                if count > stop_after:
                    raise Killed(f"killed after {stop_after} items")
                yield outcome

    Interrupted.__name__ = source_class.__name__
    catalog = Catalog.open(f"sqlite:///{workdir / 'contract-resume.sqlite'}")
    directory = project_dir or workdir
    try:
        harvest(catalog, configure(Interrupted, settings, directory))
    except Killed:
        pass
    else:
        raise AssertionError("the interrupted harvest was not interrupted")
    with catalog.session() as session:
        interrupted = session.scalar(select(func.count()).select_from(RecordRow))
    assert 0 < interrupted < len(reference), (
        f"{interrupted} of {len(reference)} records committed before the kill; "
        "expected some but not all"
    )
    resumed = harvest(catalog, configure(source_class, settings, directory))
    assert resumed.status == DONE, f"the resumed harvest ended {resumed.status}"
    assert resumed.settings.get("resumed_from") is not None, "the re-run did not resume"
    assert resumed.counts["seen"] < seen, (
        f"the resumed run read {resumed.counts['seen']} items of {seen}: it started over"
    )
    with catalog.session() as session:
        rows = session.scalars(select(RecordRow)).all()
    found = [(row.source_id, row.content_hash) for row in rows]
    assert len(found) == len(set(found)), "the resumed harvest stored a record twice"
    missing = reference - set(found)
    extra = set(found) - reference
    assert not missing, (
        f"after the resume {len(missing)} records are missing, e.g. {sorted(missing)[:3]}"
    )
    assert not extra, f"after the resume {len(extra)} records differ, e.g. {sorted(extra)[:3]}"
    result.resumed = resumed


def store_scores(catalog: Catalog, model_id: int, rows: list[dict[str, Any]]) -> None:
    """Store planted scores as enrich stores them: `rows` of ``image_id``, ``record_id``,
    ``class_uri``, ``score``, and optionally ``image_sha256`` and ``scored_at``, one per image and
    class of the model (committed: the model must be)."""
    import numpy as np

    from monalia.catalog.bulk import prepare_model, write_scores
    from monalia.catalog.models import ModelRow, utcnow

    with catalog.session() as session:
        uris = [entry["uri"] for entry in session.get(ModelRow, model_id).classes]
    column = {uri: k for k, uri in enumerate(uris)}
    images: dict[int, dict[str, Any]] = {}
    for row in rows:
        image = images.setdefault(row["image_id"], {**row, "scores": np.full(len(uris), np.nan)})
        image["scores"][column[row["class_uri"]]] = row["score"]
    table = prepare_model(catalog.engine, model_id, uris)
    planted = list(images.values())
    if any(np.isnan(image["scores"]).any() for image in planted):
        raise ValueError("every image needs a score for every class of the model")
    with catalog.session() as session:
        write_scores(
            session,
            table,
            model_id,
            [image["image_id"] for image in planted],
            [image["record_id"] for image in planted],
            [image.get("image_sha256") for image in planted],
            np.array([image["scores"] for image in planted]).reshape(len(planted), len(uris)),
            None,
            planted[0].get("scored_at") or utcnow() if planted else utcnow(),
        )
