"""`monalia run`: the stages listed under [pipeline], in order."""

from __future__ import annotations

from monalia import __version__
from monalia.cli import enrich as enrich_commands
from monalia.cli import images as images_commands
from monalia.cli import train as train_commands
from monalia.cli.app import (
    App,
    cli,
    pass_app,
    print_runs_summary,
    run_harvest_stage,
    run_label_stage,
    run_publish_stage,
    terminate_gracefully,
)
from monalia.errors import ConfigError, MonaliaError


@cli.command("run")
@pass_app
def run_pipeline(app: App) -> None:
    """Run the stages listed under [pipeline] in the project file, in order."""
    terminate_gracefully()
    available = {
        "harvest": lambda: run_harvest_stage(app, (), None, None, False),
        "images": lambda: images_commands.run_images_stage(app),
        "label": lambda: run_label_stage(app),
        "train": lambda: train_commands.run_train_stage(app),
        "enrich": lambda: enrich_commands.run_enrich_stage(app),
        "publish": lambda: run_publish_stage(app, (), ()),
    }
    stages = app.project.file.pipeline.stages
    missing = [stage for stage in stages if stage not in available]
    if missing:
        raise ConfigError(
            f"[pipeline] stages {missing} are not available in monalia {__version__} "
            f"(available: {', '.join(available)})"
        )
    runs = []
    for stage in stages:
        stage_runs = available[stage]()
        runs.extend(stage_runs)
        if any(run.status != "done" for run in stage_runs):
            break
    print_runs_summary("pipeline", runs, app)
    if any(run.status != "done" for run in runs):
        raise MonaliaError("the pipeline stopped: a stage did not finish")
