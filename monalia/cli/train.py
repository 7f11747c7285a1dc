"""Commands of the train stage: ``train``, ``evaluate`` and ``models``.

They register on the ``monalia`` group when `monalia.cli` is imported.
"""

from __future__ import annotations

import math
from pathlib import Path

import click

from monalia.cli.app import App, cli, pass_app, print_runs_summary, runs_stage, terminate_gracefully
from monalia.errors import MonaliaError

DEVICE_HELP = "Where to run: auto (CUDA when there is one), cpu, cuda, cuda:N."


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _train_options(app: App, device: str | None, restart: bool):
    from monalia.api.trainer import TrainOptions
    from monalia.progress import Progress

    return TrainOptions(
        device=device,
        resume=not restart,
        say=app.say,
        progress=lambda label, total, unit: Progress(
            label, total=total, unit=unit, enabled=not app.quiet
        ),
        cache_dir=app.project.data_dir / "cache" / "resized",
    )


def print_class_table(title: str, classes, per_class) -> None:
    """Per class: positives, AP, ROC-AUC, precision, recall, F1, F2 at its threshold."""
    from monalia.progress import summary_table

    summary_table(
        title,
        ["class", "positives", "AP", "ROC-AUC", "precision", "recall", "F1", "F2", "threshold"],
        [
            (
                entry["label"],
                metrics["positives"],
                _number(metrics["ap"]),
                _number(metrics["roc_auc"]),
                _number(metrics["precision"]),
                _number(metrics["recall"]),
                _number(metrics["f1"]),
                _number(metrics["f2"]),
                _number(metrics["threshold"]),
            )
            for entry, metrics in zip(classes, per_class, strict=True)
        ],
    )


def summary_line(split: str, summary: dict) -> str:
    return (
        f"{split}: mAP {_number(summary.get('map'))}, ROC-AUC {_number(summary.get('roc_auc'))}, "
        f"macro F1 {_number(summary.get('macro_f1'))}, macro F2 {_number(summary.get('macro_f2'))}"
        f", micro F1 {_number(summary.get('micro_f1'))} over {summary.get('samples', 0)} images"
    )


@cli.command()
@click.option("--dataset", "dataset_ref", help="Dataset name or hash (default: the newest).")
@click.option("--device", help=DEVICE_HELP)
@click.option(
    "--restart", is_flag=True, help="Ignore the last checkpoint and train from the start."
)
@click.option(
    "--retrain", is_flag=True, help="Train again although this model is already registered."
)
@click.option(
    "--folds",
    type=click.IntRange(2, 20),
    help="Also score every image of the dataset out of sample: K models, each trained "
    'without one fold (for `[report] method = "confident"`).',
)
@pass_app
def train(
    app: App,
    dataset_ref: str | None,
    device: str | None,
    restart: bool,
    retrain: bool,
    folds: int | None,
) -> None:
    """Train the project's trainer on a dataset and register the model with its card.

    A killed training resumes from its last checkpoint when run again. With --folds K, K more
    models each train without one fold of the dataset and score it: the model's out-of-sample
    scores, registered as MODEL-oosK (K more trainings; a killed one resumes too).
    """
    from monalia.stages.train import train_model

    terminate_gracefully()
    outcome = train_model(
        app.catalog,
        app.project,
        app.hooks,
        dataset_ref,
        _train_options(app, device, restart),
        retrain=retrain or restart,
    )
    card = outcome.card or {}
    if not outcome.unchanged and card:
        metrics = card["metrics"]
        evaluated = metrics.get("evaluated_on")
        if evaluated:
            print_class_table(
                f"model {outcome.name}: {evaluated} split at the chosen thresholds",
                card["classes"],
                [metrics["per_class"][entry["uri"]] for entry in card["classes"]],
            )
            for split in ("val", "test"):
                if split in metrics:
                    click.echo(summary_line(split, metrics[split]))
        pooled = [
            entry["label"]
            for entry in card["classes"]
            if (metrics.get("curation") or {}).get(entry["uri"], {}).get("rule") == "pooled"
        ]
        if pooled:
            from monalia.learning.metrics import MIN_CURATION_POSITIVES

            click.echo(
                f"{len(pooled)} classes have fewer than {MIN_CURATION_POSITIVES} validation "
                "positives: their noise and "
                f"silence thresholds follow the pooled rule ({', '.join(pooled)})"
            )
        calibration = card.get("calibration") or {}
        ece = calibration.get("ece") or {}
        if ece:
            click.echo(
                f"calibration {calibration.get('method')}: expected calibration error on "
                f"{ece['split']} {ece['before']:.3f} before, {ece['after']:.3f} after"
            )
        click.echo(
            f"model card: {app.project.data_dir / 'models' / outcome.name / 'model_card.json'}"
        )
    runs = [outcome.run]
    if folds:
        from monalia.stages.train.crossfit import crossfit

        fitted = crossfit(
            app.catalog,
            app.project,
            folds,
            app.hooks,
            outcome.name,
            _train_options(app, device, restart),
            retrain=retrain or restart,
            device=device or "auto",
        )
        _print_folds(fitted)
        runs.append(fitted.run)
    print_runs_summary("train", runs, app)


def _print_folds(fitted) -> None:
    from monalia.progress import summary_table

    summary_table(
        f"{fitted.name}: out-of-sample scores",
        ["fold", "images", "test mAP", "calibration"],
        [
            (
                entry["fold"],
                entry["images"],
                _number(entry.get("test_map")),
                entry.get("calibration") or "-",
            )
            for entry in fitted.folds
        ],
    )


@cli.command()
@click.option("--model", "model_ref", help="Model name or its start (default: the newest).")
@click.option(
    "--split",
    type=click.Choice(["test", "val", "train"]),
    default="test",
    show_default=True,
    help="Which split of the model's dataset to score.",
)
@click.option("--dataset", "dataset_ref", help="Score another dataset with the same classes.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the plots and tables (default: the model's folder/evaluation-SPLIT).",
)
@click.option("--device", help=DEVICE_HELP)
@click.option("--batch-size", default=64, show_default=True)
@pass_app
def evaluate(
    app: App,
    model_ref: str | None,
    split: str,
    dataset_ref: str | None,
    out: Path | None,
    device: str | None,
    batch_size: int,
) -> None:
    """Score a split with a registered model: per-class table and PNG plots.

    Metrics are at the thresholds stored with the model; the plots are the training curves,
    AP per class and a precision-recall curve per class.
    """
    from monalia.api.trainer import LoadOptions, read_model_card
    from monalia.catalog.lookups import find_model, model_folder
    from monalia.catalog.models import DatasetRow
    from monalia.learning.devices import resolve_device
    from monalia.learning.evaluation import evaluate_model, score_samples, write_report
    from monalia.progress import Progress
    from monalia.stages.enrich import load_predictor
    from monalia.stages.label.datasets import find_dataset
    from monalia.stages.train import dataset_images

    terminate_gracefully()
    catalog = app.catalog
    row = find_model(catalog, model_ref, app.project.model_dataset)
    folder = model_folder(app.project, row)
    card = read_model_card(folder)
    predictor = load_predictor(
        app.project,
        row,
        LoadOptions(
            str(resolve_device(device or "auto")),
            batch_size,
            cache_dir=app.project.data_dir / "cache" / "resized",
        ),
    )
    if dataset_ref:
        dataset = find_dataset(catalog, dataset_ref)
    else:
        with catalog.session() as session:
            dataset = session.get(DatasetRow, row.dataset_id) if row.dataset_id else None
            if dataset is None:
                raise MonaliaError(f"model {row.name} has no dataset in this catalog: --dataset")
            session.expunge(dataset)
    model_uris = [entry["uri"] for entry in card["classes"]]
    if not set(entry["uri"] for entry in dataset.classes) & set(model_uris):
        raise MonaliaError(f"dataset {dataset.name} shares no class with model {row.name}")
    images = dataset_images(catalog, dataset, app.project.data_dir)
    samples = images.spec.splits.get(split) or []
    if not samples:
        raise MonaliaError(f"dataset {dataset.name} has no {split} images on disk")
    if images.missing:
        app.say(f"{len(images.missing)} images of the dataset are not on disk; left out")
    with Progress(
        f"evaluate {split}", total=len(samples), unit="images", enabled=not app.quiet
    ) as progress:
        scores = score_samples(predictor, samples, progress)
    if scores.unreadable:
        app.say(f"{len(scores.unreadable)} images could not be decoded; left out")
    evaluation = evaluate_model(card, scores, split)
    print_class_table(
        f"model {row.name} on {dataset.name} {split} ({len(scores.targets)} images)",
        card["classes"],
        [metrics.as_dict() for metrics in evaluation.per_class],
    )
    click.echo(summary_line(split, evaluation.summary))
    written = write_report(evaluation, card, out or folder / f"evaluation-{split}")
    click.echo("wrote " + ", ".join(str(path) for path in written))


@cli.command("models")
@pass_app
def models_command(app: App) -> None:
    """List the registered models: dataset, backbone, classes, test mAP, folder."""
    from sqlalchemy import select

    from monalia.catalog.models import DatasetRow, ModelRow
    from monalia.catalog.reader import is_score_set
    from monalia.progress import summary_table

    with app.catalog.session() as session:
        rows = session.execute(
            select(ModelRow, DatasetRow.name)
            .outerjoin(DatasetRow, DatasetRow.id == ModelRow.dataset_id)
            .order_by(ModelRow.id)
        ).all()
        table = []
        for model, dataset in rows:
            metrics = model.metrics or {}
            evaluated = metrics.get("evaluated_on")
            card = model.card or {}
            if is_score_set(card):
                table.append(
                    (
                        model.id,
                        model.name,
                        dataset or "",
                        f"out-of-sample scores of {card.get('model')}",
                        len(model.classes),
                        f"{len(card.get('folds') or [])} folds",
                        model.created_at.strftime("%Y-%m-%d %H:%M"),
                        model.path,
                    )
                )
                continue
            table.append(
                (
                    model.id,
                    model.name,
                    dataset or "",
                    model.backbone or model.trainer,
                    len(model.classes),
                    f"{evaluated} {_number((metrics.get(evaluated) or {}).get('map'))}"
                    if evaluated
                    else "-",
                    model.created_at.strftime("%Y-%m-%d %H:%M"),
                    model.path,
                )
            )
    if not table:
        click.echo("no model yet: `monalia train`")
        return
    summary_table(
        "models",
        ["id", "name", "dataset", "backbone", "classes", "mAP", "created", "folder"],
        table,
    )


def run_crossfit_stage(app: App, folds: int) -> list:
    """Out-of-sample scores of the newest model, from `folds` fold models."""
    from monalia.stages.train.crossfit import crossfit

    fitted = crossfit(
        app.catalog, app.project, folds, app.hooks, None, _train_options(app, None, False)
    )
    return [fitted.run]


@runs_stage("train")
def run_train_stage(app: App) -> list:
    """The train stage of `monalia run`."""
    from monalia.stages.train import train_model

    outcome = train_model(
        app.catalog, app.project, app.hooks, None, _train_options(app, None, False)
    )
    return [outcome.run]
