"""``monalia teach``: a new class from a few examples, by answering what the model is least
sure of (monalia.curation.teach)."""

from __future__ import annotations

import json
import sys

import click

from monalia.cli.app import FORMATS, App, cli, pass_app, write_csv

RESULT_FIELDS = ["rank", "record", "reference", "title", "score", "answer", "image"]


def _reviewer() -> str:
    import getpass
    import os

    return os.environ.get("MONALIA_REVIEWER") or getpass.getuser() or "cli"


def _space(app: App):
    from monalia.curation.teach import record_space

    return record_space(app.catalog, app.project, app.progress("embed", "images"), app.say)


def _record_iri(app: App, reference: str) -> str:
    from monalia.similarity.near_duplicates import resolve_reference

    return resolve_reference(app.catalog, reference)[0].record


def _rows(app: App, lesson, rows: list[int]) -> list[dict]:
    from sqlalchemy import select

    from monalia.catalog.models import RecordRow

    records = [lesson.space.records[row] for row in rows]
    with app.catalog.session() as session:
        found = {
            iri: (source_id, title)
            for iri, source_id, title in session.execute(
                select(RecordRow.iri, RecordRow.source_id, RecordRow.title).where(
                    RecordRow.iri.in_(records)
                )
            )
        }
    entries = []
    for rank, row in enumerate(rows, 1):
        record = lesson.space.records[row]
        reference, title = found.get(record, ("", None))
        given = lesson.given.get(record)
        entries.append(
            {
                "rank": rank,
                "record": record,
                "reference": reference,
                "title": title,
                "score": round(float(lesson.scores[row]), 4),
                "answer": None if given is None else ("yes" if given else "no"),
                "image": lesson.space.images[row],
            }
        )
    return entries


def _print(title: str, entries: list[dict], output_format: str) -> None:
    if output_format == "json":
        click.echo(json.dumps(entries, ensure_ascii=False, indent=2))
    elif output_format == "csv":
        write_csv(entries, RESULT_FIELDS)
    else:
        from monalia.progress import summary_table

        summary_table(
            title,
            ["#", "score", "reference", "title", "answer", "image"],
            [
                [
                    e["rank"],
                    f"{e['score']:.3f}",
                    e["reference"],
                    e["title"] or "",
                    e["answer"] or "",
                    e["image"],
                ]
                for e in entries
            ],
        )


@cli.group()
def teach() -> None:
    """Teach a class the thesaurus cannot feed: a few examples, then answers to what the model is
    least sure of. `monalia label` takes the class in with its answers."""


@teach.command("new")
@click.argument("label")
@click.option("--uri", help="The class's concept URI (default: minted under the base IRI).")
@click.option(
    "--example",
    "examples",
    multiple=True,
    help="A record that shows the class: IRI, SOURCE:ID or ID (repeatable).",
)
@click.option("--like", help="More like this record: it is the first example.")
@pass_app
def teach_new(app: App, label, uri, examples, like) -> None:
    """Name a new class and give the records that show it."""
    from monalia.curation.teach import answer, create_class

    given = [like, *examples] if like else list(examples)
    if not given:
        raise click.UsageError(
            "give at least one record that shows the class (--example or --like)"
        )
    records = [_record_iri(app, reference) for reference in given]
    cls = create_class(app.catalog, app.project.file.project.base_iri, label, _reviewer(), uri)
    for record in records:
        answer(app.catalog, cls, record, True, _reviewer(), comment="example")
    click.echo(f"class {cls.label} ({cls.uri}): {len(records)} examples")


@teach.command("list")
@click.option("--format", "output_format", type=FORMATS, default="table", show_default=True)
@pass_app
def teach_list(app: App, output_format: str) -> None:
    """The classes taught, with their answers."""
    from monalia.curation.teach import taught_summary

    fields = ["label", "uri", "positives", "negatives", "created_by"]
    entries = [{name: entry[name] for name in fields} for entry in taught_summary(app.catalog)]
    if output_format == "json":
        click.echo(json.dumps(entries, ensure_ascii=False, indent=2))
    elif output_format == "csv":
        write_csv(entries, fields)
    else:
        from monalia.progress import summary_table

        summary_table(
            "taught classes",
            ["label", "uri", "positives", "negatives", "by"],
            [list(e.values()) for e in entries],
        )


@teach.command("answer")
@click.argument("name")
@click.option("--yes", "yes", multiple=True, help="A record that shows the class (repeatable).")
@click.option("--no", "no", multiple=True, help="A record that does not (repeatable).")
@pass_app
def teach_answer(app: App, name, yes, no) -> None:
    """Say which records show the class and which do not."""
    from monalia.curation.teach import answer, find_taught

    cls = find_taught(app.catalog, name)
    if not yes and not no:
        raise click.UsageError("give --yes RECORD or --no RECORD")
    for reference in yes:
        answer(app.catalog, cls, _record_iri(app, reference), True, _reviewer())
    for reference in no:
        answer(app.catalog, cls, _record_iri(app, reference), False, _reviewer())
    click.echo(f"{cls.label}: {len(yes)} yes, {len(no)} no")


@teach.command("ask")
@click.argument("name")
@click.option("--count", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--interactive/--list",
    default=None,
    help="Ask one record at a time and retrain on each answer (default when a terminal reads).",
)
@click.option("--format", "output_format", type=FORMATS, default="table", show_default=True)
@pass_app
def teach_ask(app: App, name, count, interactive, output_format) -> None:
    """The records the model is least sure of: answer them first. Interactively, each answer
    (y, n, s to skip, q to stop) retrains and the next question follows."""
    from monalia.curation.teach import answer, find_taught, lesson

    cls = find_taught(app.catalog, name)
    space = _space(app)
    if interactive is None:
        interactive = sys.stdin.isatty() and output_format == "table"
    current = lesson(app.catalog, cls, space, count)
    if not interactive:
        _print(
            f"ask about {cls.label} (least sure first)",
            _rows(app, current, current.asks),
            output_format,
        )
        return
    skipped: set[int] = set()
    answered = 0
    while answered < count:
        asks = [row for row in current.asks if row not in skipped]
        if not asks:
            click.echo("nothing left to ask")
            break
        entry = _rows(app, current, asks[:1])[0]
        click.echo(
            f"\n{entry['reference']} {entry['title'] or ''}\n  {entry['image']}\n"
            f"  score {entry['score']:.3f}"
        )
        choice = click.prompt("shows it? [y]es [n]o [s]kip [q]uit", default="s").strip().lower()
        if choice.startswith("q"):
            break
        if choice.startswith("s"):
            skipped.add(asks[0])
            continue
        answer(app.catalog, cls, entry["record"], choice.startswith("y"), _reviewer())
        answered += 1
        current = lesson(app.catalog, cls, space, count + len(skipped))
    click.echo(f"{cls.label}: {current.positives} positives, {current.negatives} negatives")


@teach.command("rank")
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--format", "output_format", type=FORMATS, default="table", show_default=True)
@pass_app
def teach_rank(app: App, name, limit, output_format) -> None:
    """The collection ranked by the class's model, best first."""
    from monalia.curation.teach import find_taught, lesson

    cls = find_taught(app.catalog, name)
    current = lesson(app.catalog, cls, _space(app), 0)
    _print(
        f"{cls.label}: {current.positives} positives, {current.negatives} negatives",
        _rows(app, current, current.ranking(limit)),
        output_format,
    )
