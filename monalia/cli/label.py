"""Commands of the label stage: ``thesaurus``, ``label`` and ``dataset``.

They register on the ``monalia`` group when `monalia.cli` is imported.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click

from monalia.cli.app import App, cli, pass_app, print_runs_summary, terminate_gracefully
from monalia.errors import MonaliaError


def short(uri: str) -> str:
    """The end of an IRI, enough to tell concepts apart in a table."""
    for separator in ("#", "/", ":"):
        if separator in uri.rstrip(separator):
            return uri.rstrip(separator).rsplit(separator, 1)[1]
    return uri


def _say_loaded(app: App):
    def report(result) -> None:
        if result.skipped:
            app.say(f"thesaurus {result.path}: unchanged ({result.concepts:,} concepts)")
        else:
            app.say(
                f"thesaurus {result.path}: loaded {result.triples:,} triples, "
                f"{result.concepts:,} concepts in {result.seconds:.2f}s"
            )

    return report


# -- thesaurus --------------------------------------------------------------------------------


@cli.group(invoke_without_command=True)
@click.pass_context
def thesaurus(ctx: click.Context) -> None:
    """Load and explore the project's thesauri (``[thesaurus] files``)."""
    if ctx.invoked_subcommand is not None:
        return
    from monalia.progress import summary_table
    from monalia.rdf.thesaurus import Thesaurus

    app: App = ctx.obj
    with Thesaurus(app.project.data_dir / "thesaurus") as store:
        loaded = store.files
        summary_table(
            "thesaurus files loaded",
            ["file", "format", "triples", "concepts"],
            [(path, e["format"], e["triples"], e["concepts"]) for path, e in loaded.items()],
        )
        if not loaded:
            click.echo(
                "nothing loaded yet: list files under [thesaurus] files, then run "
                "`monalia thesaurus load`"
            )


@thesaurus.command("load")
@click.option("--force", is_flag=True, help="Reload every file, changed or not.")
@pass_app
def thesaurus_load(app: App, force: bool) -> None:
    """Load the files under [thesaurus] files into the project's store (only what changed)."""
    from monalia.rdf.thesaurus import open_project_thesaurus

    project = app.project
    if not project.file.thesaurus.files:
        raise MonaliaError("[thesaurus] files is empty: list the SKOS files to load")
    with open_project_thesaurus(project, force=force, progress=_say_loaded(app)) as store:
        click.echo(f"thesaurus: {store.concept_count():,} concepts in {len(store.files)} file(s)")


def _concepts_named(store, term: str, language: str | None) -> list[str]:
    from monalia.rdf.thesaurus import is_iri

    if is_iri(term):
        if not store.is_concept(term):
            raise MonaliaError(f"{term} is not a concept of the loaded thesaurus")
        return [term]
    found = list(dict.fromkeys(entry.concept for entry in store.find(term, language)))
    if not found:
        raise MonaliaError(
            f"no concept has the label {term!r} in {language!r} "
            "(is the thesaurus loaded? `monalia thesaurus load`)"
        )
    return found


@thesaurus.command("show")
@click.argument("term")
@click.option(
    "--lang", help="Language of TERM and of the labels shown (default: [classes] language)."
)
@pass_app
def thesaurus_show(app: App, term: str, lang: str | None) -> None:
    """Show a concept (IRI or label): labels, broader, narrower, related, matches."""
    from monalia.rdf.thesaurus import Thesaurus

    language = lang or app.project.file.classes.language
    with Thesaurus(app.project.data_dir / "thesaurus") as store:
        concepts = _concepts_named(store, term, language)
        for index, uri in enumerate(concepts[:10]):
            if index:
                click.echo()
            info = store.describe(uri, language)
            click.echo(f"{store.preferred_label(uri, language) or short(uri)}  <{uri}>")
            for entry in info.labels:
                tag = f" @{entry.lang}" if entry.lang else ""
                click.echo(f"  {entry.kind + 'Label':<13} {entry.text}{tag}")
            for name, values in (("notation", info.notations), ("scheme", info.schemes)):
                for value in values:
                    click.echo(f"  {name:<13} {value}")
            for name, values in (
                ("broader", info.broader),
                ("narrower", info.narrower),
                ("related", info.related),
            ):
                for other, label in values:
                    click.echo(f"  {name:<13} {label or ''}  <{other}>")
            for relation, other, label in info.matches:
                click.echo(f"  {relation:<13} {label or ''}  <{other}>")
        if len(concepts) > 10:
            click.echo(f"... and {len(concepts) - 10} more concepts with that label")


@thesaurus.command("expand")
@click.argument("term")
@pass_app
def thesaurus_expand(app: App, term: str) -> None:
    """List the concepts a class (IRI or label) covers with the project's labeler settings."""
    from monalia.api.labeler import ClassRequest, TargetClass
    from monalia.rdf.thesaurus import open_project_thesaurus

    project = app.project
    classes = project.file.classes
    store = open_project_thesaurus(project, progress=_say_loaded(app))
    try:
        language = classes.language
        request = ClassRequest((term,), language, tuple(classes.schemes))
        warnings: list[str] = []
        if project.labeler is not None:
            labeler = project.labeler.create()
            (target,) = labeler.prepare(store, request)
            covered = (labeler.class_concepts() or {}).get(target.uri)
            concepts = sorted(covered if covered is not None else store.expand(target.uri))
            warnings = list(getattr(labeler, "warnings", []))
        else:  # no labeler: what the thesaurus puts under the concept
            uri = (
                term
                if store.is_concept(term)
                else (_concepts_named(store, term, language) or [None])[0]
            )
            if uri is None:
                raise MonaliaError(f"no concept named {term!r} in the project's thesauri")
            target = TargetClass(uri, store.preferred_label(uri, language) or term)
            concepts = sorted(store.expand(uri))
        click.echo(f"{target.label}  <{target.uri}>: {len(concepts)} concepts")
        for uri in concepts:
            click.echo(f"  {store.preferred_label(uri, language) or ''}  <{uri}>")
        for warning in warnings:
            app.say(warning)
    finally:
        store.close()


@cli.command()
@click.option(
    "--unmatched",
    is_flag=True,
    help="Only list the subject labels that matched no concept (writes no dataset).",
)
@click.option("--top", default=50, show_default=True, help="With --unmatched: how many to show.")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --unmatched: write all of them to this CSV file.",
)
@pass_app
def label(app: App, unmatched: bool, top: int, csv_path: Path | None) -> None:
    """Label the catalog's records with the project's classes and build the dataset."""
    from monalia.progress import summary_table
    from monalia.stages.label import label_records

    terminate_gracefully()
    with app.progress("label", "records") as progress:
        outcome = label_records(
            app.catalog,
            app.project,
            app.hooks,
            progress,
            build=not unmatched,
            on_thesaurus=_say_loaded(app),
        )
    for warning in outcome.warnings or []:
        app.say(f"warning: {warning}")
    labeling = outcome.labeling
    if unmatched:
        rows = labeling.unmatched.most_common()
        summary_table(
            f"subject labels that matched no concept ({len(rows)} distinct, "
            f"{sum(labeling.unmatched.values())} occurrences)",
            ["field", "label", "records"],
            [(field or "", text, count) for (field, text), count in rows[:top]],
        )
        if len(rows) > top:
            click.echo(f"... {len(rows) - top} more (--top N, or --csv FILE for all)")
        if csv_path is not None:
            with csv_path.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["field", "label", "records"])
                writer.writerows((field or "", text, count) for (field, text), count in rows)
            click.echo(f"wrote {len(rows)} rows to {csv_path}")
        return
    plan = outcome.plan
    assert plan is not None
    splits = plan.stats["splits"]
    available = plan.stats["available_per_class"]
    kept = {target.uri for target in plan.classes}
    summary_table(
        f"dataset {plan.name} {plan.hash[:12]}",
        ["class", "concept", "concepts", "images", "train", "val", "test", ""],
        [
            (
                target.label,
                short(target.uri),
                target.concepts,
                available.get(target.uri, 0),
                *(splits[s]["per_class"].get(target.uri, "") for s in ("train", "val", "test")),
                "" if target.uri in kept else "dropped: too few images",
            )
            for target in outcome.classes
        ]
        + [
            (
                "(all images)",
                "",
                "",
                plan.stats["images"],
                *(splits[s]["images"] for s in ("train", "val", "test")),
                f"{plan.stats['negatives']} negatives" if plan.stats["negatives"] else "",
            )
        ],
    )
    stats = plan.stats
    click.echo(
        f"{stats['records_seen']:,} records read, {stats['records_labelled']:,} labelled, "
        f"{stats['labelled_without_image']:,} of them without a usable image; "
        f"{stats['unmatched_labels']:,} distinct subject labels matched no concept"
        + (" (`monalia label --unmatched`)" if stats["unmatched_labels"] else "")
    )
    if stats.get("near_duplicate_groups"):
        click.echo(
            f"near duplicates: {stats['near_duplicate_groups']} groups kept on one side of the "
            f"split ({stats['near_duplicate_moved']} images moved)"
        )
    feedback = stats.get("review_decisions") or {}
    if feedback.get("used"):
        click.echo(
            f"review decisions: {feedback['used']} used ({feedback['added']} labels added, "
            f"{feedback['removed']} removed, {feedback['confirmed']} confirmed"
            + (f", {feedback['disputed']} disputed" if feedback.get("disputed") else "")
            + ")"
        )
    if outcome.exported:
        click.echo(f"manifests: {', '.join(str(path) for path in outcome.exported)}")
    if outcome.run is not None:
        print_runs_summary("label", [outcome.run], app)


# -- dataset ----------------------------------------------------------------------------------


@cli.group(invoke_without_command=True)
@click.pass_context
def dataset(ctx: click.Context) -> None:
    """List the catalog's datasets; `stats` and `export` look at one."""
    if ctx.invoked_subcommand is not None:
        return
    from monalia.progress import summary_table
    from monalia.stages.label.datasets import list_datasets

    app: App = ctx.obj
    summary_table(
        "datasets",
        ["name", "hash", "classes", "images", "created (UTC)"],
        [
            (
                row.name,
                row.hash[:12],
                len(row.classes),
                count,
                row.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            )
            for row, count in list_datasets(app.catalog)
        ],
    )


@dataset.command("stats")
@click.argument("reference", required=False)
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@pass_app
def dataset_stats(app: App, reference: str | None, as_json: bool) -> None:
    """Per-class image counts per split of a dataset (name or hash; default the newest)."""
    from monalia.progress import summary_table
    from monalia.stages.label.datasets import find_dataset

    row = find_dataset(app.catalog, reference)
    stats = row.stats or {}
    if as_json:
        json.dump(
            {"name": row.name, "hash": row.hash, "classes": row.classes, "stats": stats},
            sys.stdout,
            ensure_ascii=False,
            indent=2,
        )
        click.echo()
        return
    splits = stats.get("splits", {})
    rows = []
    for entry in row.classes:
        counts = [
            splits.get(s, {}).get("per_class", {}).get(entry["uri"], 0)
            for s in ("train", "val", "test")
        ]
        rows.append((entry["label"], short(entry["uri"]), *counts, sum(counts)))
    rows.append(
        (
            "(images)",
            "",
            *(splits.get(s, {}).get("images", 0) for s in ("train", "val", "test")),
            stats.get("images", 0),
        )
    )
    summary_table(
        f"dataset {row.name} {row.hash[:12]}",
        ["class", "concept", "train", "val", "test", "total"],
        rows,
    )
    for entry in stats.get("dropped_classes", []):
        click.echo(f"dropped {entry['label']} <{entry['uri']}>: {entry['images']} images")
    if stats.get("negatives"):
        click.echo(f"{stats['negatives']} negative images (no class)")


@dataset.command("export")
@click.argument("reference", required=False)
@click.option(
    "--out",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write to (default: the dataset's folder under the data dir).",
)
@click.option(
    "--format",
    "formats",
    type=click.Choice(["csv", "jsonl"]),
    multiple=True,
    help="Manifest format (repeatable; default both).",
)
@pass_app
def dataset_export(
    app: App, reference: str | None, folder: Path | None, formats: tuple[str, ...]
) -> None:
    """Write a dataset's manifests (CSV / JSONL), classes and stats."""
    from monalia.stages.label.datasets import dataset_folder, export_dataset, find_dataset

    row = find_dataset(app.catalog, reference)
    folder = folder or dataset_folder(app.project.data_dir, row)
    written = export_dataset(app.catalog, row, folder, list(formats) or ["csv", "jsonl"])
    for path in written:
        click.echo(f"wrote {path}")
