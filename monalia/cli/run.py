"""``monalia run``: the stages listed under ``[pipeline]``, in order, as `monalia.stages.pipeline`
declares them."""

from __future__ import annotations

from monalia import __version__
from monalia.cli.app import (
    App,
    cli,
    pass_app,
    print_runs_summary,
    stage_runners,
    terminate_gracefully,
)
from monalia.errors import ConfigError, MonaliaError
from monalia.stages.pipeline import PIPELINE, STAGE_NAMES

TASK_STAGES = ("label", "train", "enrich")  # the stages that run once per learning task


def _help() -> str:
    stages = "; ".join(f"{stage.name} (`{stage.command}`)" for stage in PIPELINE)
    return (
        "Run the stages listed under [pipeline] in the project file, in order, stopping at the "
        f"first that does not finish. The stages, in their order: {stages}."
    )


@cli.command("run", help=_help(), short_help="Run the stages listed under [pipeline], in order.")
@pass_app
def run_pipeline(app: App) -> None:
    terminate_gracefully()
    stages = app.project.file.pipeline.stages
    runners = stage_runners()
    missing = [stage for stage in stages if stage not in runners]
    if missing:
        raise ConfigError(
            f"[pipeline] stages {missing} are not available in monalia {__version__} "
            f"(available: {', '.join(STAGE_NAMES)})"
        )
    runs = []
    base = app.project
    # a project of several tasks runs each learning stage once per task (or the --task one)
    tasks = [base.task.name] if base.task is not None else base.task_names()
    for stage in stages:
        views = [base.for_task(name) for name in tasks] if stage in TASK_STAGES else [base]
        for view in views:
            app.project = view
            stage_runs = runners[stage](app)
            runs.extend(stage_runs)
            if any(run.status != "done" for run in stage_runs):
                break
        app.project = base
        if any(run.status != "done" for run in runs):
            break
    print_runs_summary("pipeline", runs, app)
    if any(run.status != "done" for run in runs):
        raise MonaliaError("the pipeline stopped: a stage did not finish")
