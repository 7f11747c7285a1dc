"""A contract test every source plugin can run, monalia's own and third-party ones alike.

    from monalia.testing import check_source_contract

    def test_my_source(tmp_path):
        check_source_contract(MySource, {"path": "..."}, tmp_path)

It harvests twice into a fresh SQLite catalog and checks that the first run stores valid records,
that the second finds them all unchanged and adds nothing, and that the runs are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from monalia.catalog import Catalog
from monalia.catalog.models import RecordRow
from monalia.config import PluginInstance
from monalia.pipeline.harvest import harvest
from monalia.pipeline.runs import DONE, RunInfo
from monalia.plugin import PluginContext
from monalia.plugins import PluginInfo, PluginOrigin
from monalia.source import Source


@dataclass
class ContractResult:
    first: RunInfo
    second: RunInfo
    catalog: Catalog
    records: int


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
    return ContractResult(first, second, catalog, stored)
