"""What `monalia search` and `monalia report` need from a project: a store, a model, classes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from monalia.catalog import Catalog
from monalia.catalog.models import ImageRow, ModelRow
from monalia.config import Project
from monalia.curation import (
    Curation,
    CurationClass,
    Finding,
    Mentions,
    ThresholdOverride,
    curation_classes,
)
from monalia.enrichment import model_graph_iri
from monalia.errors import ConfigError
from monalia.localstore import LocalSparqlClient, sparql_client
from monalia.pipeline.train import find_model, image_file

STORE_SINKS = ("embedded-store", "sparql-store", "turtle")


@dataclass
class CurationSetup:
    curation: Curation
    model: ModelRow
    store: str  # where the queries go, for messages


def report_client(project: Project, store: str | None):
    """The store to query: a sink instance by name, an endpoint URL, a folder or an RDF file."""
    wanted = store or project.model.report.store
    sinks = project.sinks
    if wanted is None:
        for plugin in STORE_SINKS:
            named = [i for i in sinks.values() if i.info.name == plugin]
            if plugin == "turtle":
                named = [i for i in named if "{graph}" not in i.settings.path]
            if named:
                wanted = named[0].instance
                break
        else:
            raise ConfigError(
                "nothing to query: add an embedded-store or sparql-store sink and run "
                "`monalia enrich`, or name a store with --store or [report] store"
            )
    instance = sinks.get(wanted)
    if instance is None:
        return sparql_client(wanted, project.dir)
    settings = instance.settings
    if instance.info.name in ("embedded-store", "turtle"):  # a store folder, an RDF file
        return LocalSparqlClient(instance.context.path(settings.path))
    if instance.info.name == "sparql-store":
        sink = instance.create()
        query = sink.endpoints[0]
        if not query:
            raise ConfigError(f"sink {wanted}: set query_endpoint (or a preset) to query it")
        password = instance.context.secret(settings.password_env, "the store's password")
        return sparql_client(query, project.dir, settings.http, settings.username, password)
    raise ConfigError(
        f"sink {wanted} ({instance.info.name}) cannot be queried: name an embedded-store, "
        "sparql-store or turtle sink, an endpoint URL, a store folder or an RDF file"
    )


def class_expansions(project: Project) -> tuple[dict[str, set[str]] | None, object | None]:
    """The labeler's expansions of the project's classes, and the thesaurus (None without one)."""
    if not project.model.thesaurus.files:
        return None, None
    from monalia.pipeline.label import prepare_labeler
    from monalia.thesaurus import open_project_thesaurus

    thesaurus = open_project_thesaurus(project)
    expansions = None
    if project.labeler is not None:
        labeler, _ = prepare_labeler(project, thesaurus)
        expansions = getattr(labeler, "expansions", None)
    return expansions, thesaurus


def project_mentions(project: Project, model) -> Mentions:
    """What counts as mentioning each of the model's classes, with the project's expansions."""
    expansions, thesaurus = class_expansions(project)
    try:
        classes = curation_classes(model, expansions, thesaurus, project.model.classes.language)
    finally:
        if thesaurus is not None:
            thesaurus.close()
    return Mentions(classes)


def open_curation(
    catalog: Catalog,
    project: Project,
    model_ref: str | None = None,
    store: str | None = None,
    below: float | None = None,
    above: float | None = None,
) -> CurationSetup:
    """Search and reports for a registered model over the configured (or named) store."""
    section = project.model.report
    model = find_model(catalog, model_ref or section.model or project.model.enrich.model)
    expansions, thesaurus = class_expansions(project)
    try:
        classes = curation_classes(
            model,
            expansions,
            thesaurus,
            project.model.classes.language,
            {
                name: ThresholdOverride(entry.noise_below, entry.silence_above)
                for name, entry in section.classes.items()
            },
            ThresholdOverride(
                below if below is not None else section.noise_below,
                above if above is not None else section.silence_above,
            ),
        )
    finally:
        if thesaurus is not None:
            thesaurus.close()
    client = report_client(project, store)
    graph = model_graph_iri(project.model.project.base_iri, model.name)
    return CurationSetup(Curation(client, graph, classes), model, client.endpoint)


def pick_classes(setup: CurationSetup, names: tuple[str, ...]) -> list[CurationClass] | None:
    from monalia.curation import find_class

    if not names:
        return None
    return [find_class(setup.curation.classes, name) for name in names]


def add_local_images(catalog: Catalog, project: Project, findings: list[Finding]) -> None:
    """Set each finding's `image_path` to the catalog's copy of its image, where there is one."""
    urls = sorted({f.image for f in findings})
    paths: dict[str, str] = {}
    with catalog.session() as session:
        for start in range(0, len(urls), 500):
            rows = session.execute(
                select(ImageRow.url, ImageRow.path).where(
                    ImageRow.url.in_(urls[start : start + 500]), ImageRow.path.is_not(None)
                )
            )
            for url, stored in rows:
                path = image_file(project.data_dir, stored)
                if path is not None and Path(path).is_file():
                    paths[url] = str(path)
    for finding in findings:
        finding.image_path = paths.get(finding.image)
