"""``monalia thesaurus``: load and explore the project's thesauri."""

from __future__ import annotations

import click

from monalia.cli.app import App, cli, pass_app
from monalia.errors import MonaliaError


def short(uri: str) -> str:
    """The end of an IRI, enough to tell concepts apart in a table."""
    for separator in ("#", "/", ":"):
        if separator in uri.rstrip(separator):
            return uri.rstrip(separator).rsplit(separator, 1)[1]
    return uri


def say_loaded(app: App):
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
    with open_project_thesaurus(project, force=force, progress=say_loaded(app)) as store:
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
    store = open_project_thesaurus(project, progress=say_loaded(app))
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
