"""The ``demo`` command: a sample collection made on the spot, through every stage.

It registers on the ``monalia`` group when `monalia.cli` is imported.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from monalia.cli.app import App, cli, print_runs_summary, run_harvest_stage, run_label_stage
from monalia.errors import ConfigError, MonaliaError

MADE_BY_DEMO = (
    "planted.json",
    "shapes.json",
    "monalia.toml",
    "garnier-sample.ttl",
    "jocondelab",
    "images",
)
OUTPUTS = (".monalia", "store", "out", "report", *MADE_BY_DEMO)


@cli.command()
@click.argument("folder", default="monalia-demo", type=click.Path(file_okay=False))
@click.option("--notices", type=click.IntRange(min=60), default=300, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--folds",
    type=click.IntRange(min=0, max=20),
    default=3,
    show_default=True,
    help="Fold models for the out-of-sample scores of the confident method (0: none).",
)
@click.pass_context
def demo(ctx: click.Context, folder: str, notices: int, epochs: int, folds: int) -> None:
    """Make a sample collection in FOLDER and take it through the whole pipeline.

    Notices in JocondeLab's shape in an embedded store, a thesaurus with Garnier's labels,
    pictures drawn so the classes are learnable, a few notices planted wrong. Then harvest,
    fetch the images, label, train (on the CPU, a few minutes at most) with its fold models,
    enrich into a Turtle file and an embedded store, and report noise and silence, with an
    HTML report.
    """
    from monalia.catalog.run_tracking import DONE
    from monalia.cli.enrich import run_enrich_stage
    from monalia.cli.images import run_images_stage
    from monalia.cli.report import print_findings
    from monalia.cli.train import run_crossfit_stage, run_train_stage
    from monalia.curation.html_report import write_site
    from monalia.curation.session import add_local_images, open_curation
    from monalia.demo.collection import build_sample

    root = Path(folder)
    if root.exists() and any(root.iterdir()):
        if not (root / "planted.json").is_file():
            raise ConfigError(f"{root} is not empty and holds no earlier demo: name a new folder")
        for name in OUTPUTS:  # an earlier demo: start again from nothing
            path = root / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    quiet = ctx.obj.quiet if isinstance(ctx.obj, App) else False
    say = (lambda message: None) if quiet else (lambda message: click.echo(message, err=True))
    sample = build_sample(root, notices=notices, epochs=epochs)
    say(
        f"sample: {notices} notices in {root / 'jocondelab'}, "
        f"{len(sample.noise)} planted mislabelled and {len(sample.silence)} planted unlabelled"
    )

    app = App(str(root / "monalia.toml"), quiet)
    runs = run_harvest_stage(app, (), None, None, False)
    if all(run.status == DONE for run in runs):
        runs.extend(run_images_stage(app))
    base = app.project
    # each learning task in turn: what the pictures show (with the fold models the confident
    # method needs), then how they are drawn
    for index, name in enumerate(base.task_names()):
        app.project = base.for_task(name)
        stages = [run_label_stage, run_train_stage]
        if folds and index == 0:
            stages.append(lambda app: run_crossfit_stage(app, folds))
        for stage in (*stages, run_enrich_stage):
            if any(run.status != DONE for run in runs):
                break
            runs.extend(stage(app))
    app.project = base
    print_runs_summary("demo", runs, app)
    if any(run.status != DONE for run in runs):
        raise MonaliaError("the demo stopped: a stage did not finish")

    setup = open_curation(app.catalog, app.project)
    for kind in ("noise", "silence"):
        findings = getattr(setup.curation, kind)()
        setup.curation.describe(findings)
        add_local_images(app.catalog, app.project, findings)
        print_findings(
            f"{kind}: {len(findings)} records (method {setup.method})", findings, "table"
        )
    index = write_site(
        root / "report", setup, app.catalog, app.project, 24, app.progress("report", "pages")
    )
    planted = ", ".join(sample.noise + sample.silence)
    click.echo(f"planted (planted.json): {planted}")
    click.echo(f"HTML report: {index}")
    project_file = root / "monalia.toml"
    script = sys.argv[0] if sys.argv else ""
    command = script if Path(script).name == "monalia" else "python -m monalia"
    click.echo(
        f"review the findings in the workbench: {command} --project {project_file} serve "
        "(then open http://127.0.0.1:8000/)"
    )
