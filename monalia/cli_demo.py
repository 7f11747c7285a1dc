"""The ``demo`` command: a sample collection made on the spot, through every stage.

It registers on the ``monalia`` group when `monalia.cli` is imported.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from monalia.cli import App, _print_runs_summary, _run_harvest, _run_label, cli
from monalia.errors import ConfigError, MonaliaError

MADE_BY_DEMO = ("planted.json", "monalia.toml", "garnier-sample.ttl", "jocondelab", "images")
OUTPUTS = (".monalia", "store", "out", "report", *MADE_BY_DEMO)


@cli.command()
@click.argument("folder", default="monalia-demo", type=click.Path(file_okay=False))
@click.option("--notices", type=click.IntRange(min=60), default=300, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.pass_context
def demo(ctx: click.Context, folder: str, notices: int, epochs: int) -> None:
    """Make a sample collection in FOLDER and take it through the whole pipeline.

    Notices in JocondeLab's shape in an embedded store, a thesaurus with Garnier's labels,
    pictures drawn so the classes are learnable, a few notices planted wrong. Then harvest,
    fetch the images, label, train (on the CPU, a few minutes at most), enrich into a Turtle
    file and an embedded store, and report noise and silence, with an HTML report.
    """
    from monalia.cli_enrich import run_enrich_stage
    from monalia.cli_images import run_images_stage
    from monalia.cli_report import print_findings
    from monalia.cli_train import run_train_stage
    from monalia.demo import build_sample
    from monalia.pipeline.curate import add_local_images, open_curation
    from monalia.pipeline.runs import DONE
    from monalia.report_html import write_site

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
    runs = _run_harvest(app, (), None, None, False)
    for stage in (run_images_stage, _run_label, run_train_stage, run_enrich_stage):
        if any(run.status != DONE for run in runs):
            break
        runs.extend(stage(app))
    _print_runs_summary("demo", runs, app)
    if any(run.status != DONE for run in runs):
        raise MonaliaError("the demo stopped: a stage did not finish")

    setup = open_curation(app.catalog, app.project)
    for kind in ("noise", "silence"):
        findings = getattr(setup.curation, kind)()
        setup.curation.describe(findings)
        add_local_images(app.catalog, app.project, findings)
        print_findings(f"{kind}: {len(findings)} records", findings, "table")
    index = write_site(
        root / "report", setup, app.catalog, app.project, 24, app.progress("report", "pages")
    )
    planted = ", ".join(sample.noise + sample.silence)
    click.echo(f"planted (planted.json): {planted}")
    click.echo(f"HTML report: {index}")
