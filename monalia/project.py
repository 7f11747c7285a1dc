"""The project file, ``monalia.toml``: parsed, validated against each plugin's settings, located.

Every error names the key and the line of the file it is on. Secrets are never stored in the
file: a setting ending in ``_env`` names the environment variable that holds one.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from monalia.api.plugin import Plugin, PluginContext, PluginSettings
from monalia.errors import ConfigError
from monalia.net.url_policy import UrlPolicy

if TYPE_CHECKING:  # pragma: no cover
    from monalia.api.registry import PluginInfo, PluginRegistry

from monalia.curation.problem_kinds import DATASET_CHECKS, IMAGE_CHECKS, KINDS
from monalia.project_toml import (  # noqa: F401  (part of this module's interface)
    CATALOG_ENV,
    DEFAULT_CATALOG,
    PROJECT_ENV,
    PROJECT_FILE,
    find_project_file,
    find_secret,
    resolve_catalog_url,
    resolve_path,
)

DEFAULT_TRAINER = "cnn"  # used when the project file has no [trainer] table
DEFAULT_LABELER = "skos"  # used when the project file names classes but no [labeler]
# the stages `[pipeline]` may name, in order (monalia.stages.pipeline declares each one)
StageName = Literal["harvest", "images", "label", "train", "enrich", "publish"]
STAGES: tuple[str, ...] = get_args(StageName)


class _Section(BaseModel):
    # built when a project file is validated, not when this module is imported
    model_config = ConfigDict(extra="forbid", defer_build=True)


class ProjectSection(_Section):
    name: str = "monalia"  # the project's name, in runs and reports
    catalog: str = DEFAULT_CATALOG  # an SQLAlchemy URL, without its password; $MONALIA_CATALOG wins
    catalog_password_env: str | None = None  # the variable holding the catalog's password
    base_iri: str = "urn:monalia:"  # what minted IRIs (records, graphs, models) start with
    data_dir: str = ".monalia"  # images, models and stores, relative to the project file
    # what harvested URLs may point at (see the security model)
    allow_file_urls: bool = False  # file: URLs, and only from the project's own local sources
    allow_private_addresses: bool = False  # loopback and private networks (internal servers)
    max_redirects: int = Field(default=5, ge=0)  # redirects followed for one URL


class PluginSection(BaseModel):
    """A plugin instance: ``plugin`` names the class, every other key is one of its settings."""

    model_config = ConfigDict(extra="allow", defer_build=True)
    plugin: str


class ThesaurusSection(_Section):
    """The thesauri subjects are matched against: `monalia thesaurus load` reads them."""

    files: list[str] = Field(default_factory=list)  # SKOS files, any RDF format, maybe gzipped
    format: str | None = None  # when the file names do not tell (rdflib's format names)


class ClassesSection(_Section):
    """The classes to learn: concept IRIs or labels, and/or a shipped preset."""

    targets: list[str] = Field(default_factory=list)  # concept IRIs or labels, after the preset's
    preset: str | None = None  # e.g. "monalia-40": MonaLIA's 40 Joconde classes
    language: str = "fr"  # the language class labels (and untagged subjects) are read in
    schemes: list[str] = Field(default_factory=list)  # only look labels up in these schemes


class TaskSection(_Section):
    """One learning task: a field of the records, the classes learnt from it, its dataset.

    A table per task under `[tasks]`, named `[tasks.NAME]`; the first is the default of every
    command given no `--task`. A project without such tables has one task, "default", made of
    `[classes]`, `[labeler]` and `[dataset]`."""

    targets: list[str] = Field(default_factory=list)  # the task's classes: IRIs or labels
    preset: str | None = None  # a shipped preset of classes, e.g. "monalia-40"
    language: str = "fr"  # class labels are read in it; default: [classes] language
    schemes: list[str] = Field(default_factory=list)  # look labels up in these schemes only

    # the source fields whose subjects this task learns (e.g. ["REPR", "REPR_text"]); empty:
    # every subject of the record
    fields: list[str] = Field(default_factory=list)
    # the vocabulary id the enrichment graph gives the classifier (Joconde's field code); None:
    # the first of `fields`, else "REPR"
    vocab_id: str | None = None
    dataset: str | None = None  # the task's dataset (and model) name; None: the task's name
    labeler: PluginSection | None = None  # None: the project's [labeler] (else the SKOS one)

    @field_validator("vocab_id")
    @classmethod
    def _vocab_id_is_a_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,40}", value):
            raise ValueError("a field code: letters, digits and _, starting with a letter")
        return value


class DatasetSection(_Section):
    """How labelled images become a training set."""

    name: str = "default"  # the dataset's name; each version also has a content hash
    sources: list[str] = Field(default_factory=list)  # empty: every source in the catalog
    images: Literal["fetched", "any"] = "fetched"  # "any": also images not fetched yet
    min_per_class: int = Field(
        default=20, ge=1
    )  # a class with fewer images is dropped, and said so
    max_per_class: int | None = Field(default=None, ge=1)  # at most this many images per class
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)  # train, validation, test
    seed: int = 0  # the split's random seed: the same seed, the same split
    negatives: float = Field(default=0.0, ge=0.0)  # negatives per positive image
    export: list[Literal["csv", "jsonl"]] = Field(  # manifests written beside the dataset
        default_factory=lambda: ["csv", "jsonl"]
    )
    # images `monalia audit` found with any of these problems are left out (its kinds, e.g.
    # "low_information", "odd_aspect_ratio", "exact_duplicates", "outlier")
    exclude_problems: list[str] = Field(default_factory=list)

    @field_validator("exclude_problems")
    @classmethod
    def _known_problems(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in KINDS]
        if unknown:
            raise ValueError(f"unknown problem {unknown[0]!r}: one of {', '.join(KINDS)}")
        return list(dict.fromkeys(value))

    @field_validator("split")
    @classmethod
    def _split_sums_to_one(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(part < 0 for part in value) or abs(sum(value) - 1.0) > 1e-6 or value[0] <= 0:
            raise ValueError("train, validation and test fractions must be >= 0 and sum to 1")
        return value


class HarvestSection(_Section):
    """How harvests commit: the ``[harvest]`` table."""

    # a commit every this many records (None: each source's own batch size) or this many
    # seconds, whichever comes first; a killed harvest loses at most that much work. A harvest
    # parsed by a worker also commits what it holds (from a fifth of that) when it has read
    # everything the worker sent
    commit_records: int | None = Field(default=None, ge=1)
    commit_seconds: float = Field(default=10.0, gt=0)  # see commit_records
    # read and parse the source in a second process while the first writes (about twice the
    # rate on two cores); false keeps a harvest in one process. Harvests with prepare_record or
    # record_harvested hooks, and crawled sources, always stay in one
    parse_in_worker: bool = True
    # processes that parse the pages of a paged source (OAI-PMH) side by side while one reads
    # the next page; unset: one per CPU, at most 4
    parse_processes: int | None = Field(default=None, ge=1)


class ImagesSection(_Section):
    """The image stage: the ``[images]`` table."""

    # the box every image is fetched at (IIIF `!W,H`) or scaled down into, keeping its shape
    width: int = Field(default=512, ge=32)
    height: int = Field(default=512, ge=32)  # see width
    folder: str = "images"  # under data_dir; files are named by content hash
    # crawl processes sharing the work (and the limits below); None: one per CPU, at most 4
    processes: int | None = Field(default=None, ge=1)
    concurrency: int = Field(default=16, ge=1)  # requests in flight in all
    per_host: int = Field(default=8, ge=1)  # requests in flight to one host
    delay: float = Field(default=0.0, ge=0.0)  # least seconds between requests to one host
    autothrottle: bool = True  # slow down for a host whose answers slow down
    retries: int = Field(default=3, ge=0)  # further tries of a failed request
    backoff: float = Field(default=1.0, ge=0)  # seconds before the first retry, doubled after
    timeout: float = Field(default=60.0, gt=0)  # seconds for one request
    max_retry_after: float = Field(default=600.0, ge=0)  # a longer Retry-After fails instead
    max_bytes: int = Field(default=50_000_000, ge=1)  # a larger answer is refused
    max_pixels: int = Field(default=100_000_000, ge=1)  # decompression-bomb guard
    min_side: int = Field(default=16, ge=1)  # a smaller image is refused
    max_aspect: float = Field(default=50.0, ge=1.0)  # a longer or thinner one is refused
    robots: bool = False  # obey robots.txt (image servers of collections rarely have one)
    user_agent: str | None = None  # default: monalia's own


class ExecutorSection(_Section):
    """Where the image and enrich stages run: the ``[executor]`` table."""

    kind: Literal["local", "ray"] = "local"  # "ray": the image and enrich stages on a Ray cluster
    address: str | None = None  # ray: the cluster's address; None: $RAY_ADDRESS, else a local Ray
    cpus: int | None = Field(default=None, ge=1)  # a local Ray's CPUs (default: this machine's)
    gpus: int | None = Field(default=None, ge=0)  # a local Ray's GPUs (default: those it finds)
    actors: int | None = Field(
        default=None, ge=1
    )  # model actors; default: one per GPU, else one per CPU
    shards: int | None = Field(default=None, ge=1)  # image crawl shards; default: one per CPU


class EnrichSection(_Section):
    """How `monalia enrich` scores the catalog's images and what it publishes."""

    model: str | None = None  # model name or its start; None: the newest registered
    device: str = "auto"  # auto (CUDA when there is one), cpu, cuda, cuda:N
    batch_size: int = Field(default=64, ge=1)  # images scored together
    workers: int | None = Field(default=None, ge=0)  # loader processes; None: by device
    chunk_size: int = Field(default=2048, ge=1)  # images scored and committed together
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)  # lower scores stay out of the RDF
    sinks: list[str] | None = None  # sink instances to publish to; None: every configured sink
    records: bool = False  # also publish the harvested records to the sinks
    # also find where each detection is seen (boxes from its Grad-CAM map), as `--regions`
    regions: bool = False
    # a region encloses the heat map's areas at or above this share of its peak
    region_fraction: float = Field(default=0.75, gt=0.0, lt=1.0)


class ClassThresholds(_Section):
    noise_below: float | None = Field(default=None, ge=0.0, le=1.0)
    silence_above: float | None = Field(default=None, ge=0.0, le=1.0)


class ReportSection(_Section):
    """What `monalia search` and `monalia report` query, and their thresholds."""

    # a sink instance (embedded-store, sparql-store, or a turtle file), a SPARQL endpoint URL,
    # a store folder or an RDF file; None: the first embedded-store, sparql-store or turtle sink
    store: str | None = None
    model: str | None = None  # None: [enrich] model, else the newest registered
    noise_below: float | None = Field(default=None, ge=0.0, le=1.0)  # every class
    silence_above: float | None = Field(default=None, ge=0.0, le=1.0)  # every class
    classes: dict[str, ClassThresholds] = Field(default_factory=dict)  # by class URI or label
    # how noise and silence are found: "confident" (confident learning over out-of-sample
    # scores, for the records of the model's dataset; needs `monalia train --folds K`) or
    # "threshold" (MonaLIA's rule on the model's own scores)
    method: Literal["confident", "threshold"] = "confident"
    search_limit: int = Field(default=24, ge=1)  # search results per class in the HTML report
    # how search and silence rank: "image" (the model's score) or "hybrid" (the image score
    # fused with the metadata's evidence; see monalia.curation.hybrid)
    ranking: Literal["image", "hybrid"] = "image"
    # the hybrid ranking's reliability of each kind of evidence: the class's own concept or
    # label among the subjects, a narrower term, the label in the title or description
    hybrid_weights: dict[Literal["class", "narrower", "text"], float] = Field(
        default_factory=lambda: {"class": 0.9, "narrower": 0.8, "text": 0.7}
    )

    @field_validator("hybrid_weights")
    @classmethod
    def _weights_are_chances(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not 0.5 <= weight < 1.0 for weight in value.values()):
            raise ValueError("each weight is a chance from 0.5 (no evidence) to below 1")
        return value


class SimilaritySection(_Section):
    """Image similarity and near duplicates: `monalia similar`, `monalia duplicates`, the split."""

    # whose feature vectors: "imagenet" (the ImageNet backbone below: works before any
    # training), "scoring" (the model `monalia enrich` scores with, kept in the same pass),
    # or a registered model's name
    model: str = "imagenet"
    backbone: str = "efficientnet_lite0"  # with model = "imagenet"
    weights: str = "imagenet"  # the backbone's packaged or cached ImageNet weights, or a path
    enrich: bool = True  # `monalia enrich` keeps the vectors of the images it scores
    threshold: float = Field(default=0.87, gt=0.0, le=1.0)  # cosine: near duplicates from here
    split: bool = True  # `monalia label` keeps near-duplicate groups on one side of the split
    # the index: "auto" (exact up to `exact_up_to` vectors, an inverted file past it),
    # "exact" (always: slower past a few hundred thousand) or "ivf" (always)
    index: Literal["auto", "exact", "ivf"] = "auto"
    exact_up_to: int = Field(default=50_000, ge=1)  # see index

    @property
    def exact_limit(self) -> int:
        """How many vectors the index keeps exact."""
        return {"auto": self.exact_up_to, "exact": 2**62, "ivf": 0}[self.index]

    device: str = "auto"  # where vectors are computed: auto, cpu, cuda, cuda:N
    batch_size: int = Field(default=32, ge=1)  # images embedded together


class AuditSection(_Section):
    """`monalia audit`: which checks run and where each draws its line."""

    # cleanvision's image checks over every fetched image (monalia.curation.audit.IMAGE_CHECKS)
    image_checks: list[str] = Field(default_factory=lambda: list(IMAGE_CHECKS))
    # cleanlab Datalab's checks over a dataset and a model's out-of-sample scores
    dataset_checks: list[str] = Field(default_factory=lambda: list(DATASET_CHECKS))
    # a check's threshold where the library's default does not suit the collection, e.g.
    # {dark = 0.2, blurry = 0.25}: each library's own meaning (see the audit how-to)
    thresholds: dict[str, float] = Field(default_factory=dict)
    workers: int = Field(default=1, ge=1)  # processes cleanvision reads images with

    @field_validator("image_checks", "dataset_checks")
    @classmethod
    def _known_checks(cls, value: list[str], info) -> list[str]:
        allowed = IMAGE_CHECKS if info.field_name == "image_checks" else DATASET_CHECKS
        unknown = [name for name in value if name not in allowed]
        if unknown:
            raise ValueError(f"unknown check {unknown[0]!r}: one of {', '.join(allowed)}")
        return list(dict.fromkeys(value))

    @field_validator("thresholds")
    @classmethod
    def _known_thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = [name for name in value if name not in KINDS]
        if unknown:
            raise ValueError(f"no check named {unknown[0]!r}: one of {', '.join(KINDS)}")
        return value


class ServeSection(_Section):
    """The curators' workbench, `monalia serve`."""

    # users who may log in when the workbench is bound to another address than loopback:
    # lines of `name:scrypt$...` written by `monalia users add` (relative to the project file)
    users_file: str = "workbench-users.txt"
    per_page: int = Field(default=50, ge=5, le=500)  # findings per page
    search_limit: int = Field(default=500, ge=10)  # search results kept per class
    # detections drawn per class for the Sample list (stratified by score: `review stats`
    # then measures the class's precision, not that of its best scores)
    sample_size: int = Field(default=50, ge=5)
    heatmaps: int = Field(default=60, ge=0)  # heat maps in `monalia report html` (0: none)


class PipelineSection(_Section):
    """What `monalia run` runs, in order; it stops at the first stage that does not finish."""

    # the stages to run, in order: any of STAGES (monalia.stages.pipeline declares each one)
    stages: list[StageName] = Field(default_factory=lambda: ["harvest", "publish"])


class ProjectFile(_Section):
    project: ProjectSection = Field(default_factory=ProjectSection)
    sources: dict[str, PluginSection] = Field(default_factory=dict)
    harvest: HarvestSection = Field(default_factory=HarvestSection)
    thesaurus: ThesaurusSection = Field(default_factory=ThesaurusSection)
    classes: ClassesSection = Field(default_factory=ClassesSection)
    labeler: PluginSection | None = None
    tasks: dict[str, TaskSection] = Field(default_factory=dict)
    dataset: DatasetSection = Field(default_factory=DatasetSection)
    trainer: PluginSection | None = None
    sinks: dict[str, PluginSection] = Field(default_factory=dict)
    images: ImagesSection = Field(default_factory=ImagesSection)
    executor: ExecutorSection = Field(default_factory=ExecutorSection)
    enrich: EnrichSection = Field(default_factory=EnrichSection)
    report: ReportSection = Field(default_factory=ReportSection)
    serve: ServeSection = Field(default_factory=ServeSection)
    audit: AuditSection = Field(default_factory=AuditSection)
    similarity: SimilaritySection = Field(default_factory=SimilaritySection)
    pipeline: PipelineSection = Field(default_factory=PipelineSection)


@dataclass
class PluginInstance:
    """A plugin as the project file configures it: which class, its settings, its context."""

    kind: str
    instance: str
    info: PluginInfo
    settings: PluginSettings
    context: PluginContext

    def create(self) -> Any:
        """A new plugin object with these settings."""
        return self.info.cls(settings=self.settings, context=self.context)


class DeferredPluginInstance(PluginInstance):
    """A plugin the project uses by default (no table names it): its class is loaded and its
    default settings validated when first used, so a command that never uses it (a report
    does not train) does not import it."""

    def __init__(self, kind: str, instance: str, context: PluginContext, resolve):
        self.kind, self.instance, self.context = kind, instance, context
        self._resolve = resolve

    def __getattr__(self, name: str) -> Any:
        if name in ("info", "settings"):
            resolved = self._resolve()
            self.info, self.settings = resolved.info, resolved.settings
            return getattr(self, name)
        raise AttributeError(name)


DEFAULT_TASK = "default"  # the task of a project file without [tasks] tables
DEFAULT_VOCAB_ID = "REPR"  # Joconde's "what is represented", MonaLIA's field


@dataclass(frozen=True)
class Task:
    """One learning task of a project: which subjects, which classes, which dataset."""

    name: str
    fields: tuple[str, ...]  # the subject fields it learns from; empty: every subject
    vocab_id: str  # the vocabulary id its enrichment graph carries
    dataset: str  # its dataset name: its models' names start with it
    explicit: bool  # named in a [tasks] table (else the project's only, implicit task)


@dataclass
class Project:
    """A loaded, validated project file."""

    path: Path | None
    file: ProjectFile  # the project file's tables, validated
    sources: dict[str, PluginInstance] = field(default_factory=dict)
    sinks: dict[str, PluginInstance] = field(default_factory=dict)
    labeler: PluginInstance | None = None
    trainer: PluginInstance | None = None
    registry: PluginRegistry | None = None
    tasks: dict[str, Task] = field(default_factory=dict)
    task_labelers: dict[str, PluginInstance | None] = field(default_factory=dict)
    task: Task | None = None  # the task this view of the project is for (`for_task`)

    def task_names(self) -> list[str]:
        return list(self.tasks) or [DEFAULT_TASK]

    def for_task(self, name: str | None = None) -> Project:
        """This project as one task sees it: `file.classes`, `file.dataset.name` and `labeler`
        are the task's. `name` None keeps this view's task, else picks the first one listed
        (the default task of commands given no --task)."""
        if self.task is not None and name in (None, self.task.name):
            return self
        if not self.tasks:
            if name not in (None, DEFAULT_TASK):
                raise ConfigError(f"the project has no task {name!r}: it has no [tasks] tables")
            task = Task(DEFAULT_TASK, (), DEFAULT_VOCAB_ID, self.file.dataset.name, explicit=False)
            return replace(self, task=task)
        if name is None:
            name = next(iter(self.tasks))  # the first task is the project's default
        if name not in self.tasks:
            raise ConfigError(f"no task {name!r} in the project (tasks: {', '.join(self.tasks)})")
        task = self.tasks[name]
        section = self.file.tasks[name]
        classes = ClassesSection(
            targets=section.targets,
            preset=section.preset,
            language=section.language,
            schemes=section.schemes,
        )
        dataset = self.file.dataset.model_copy(update={"name": task.dataset})
        file = self.file.model_copy(update={"classes": classes, "dataset": dataset})
        return replace(self, file=file, labeler=self.task_labelers.get(name), task=task)

    @property
    def model_dataset(self) -> str | None:
        """The dataset name a task's models are found by; None when any model will do (a
        project with one task, whose models may come from any dataset)."""
        if len(self.tasks) < 2:
            return None
        return self.for_task(None if self.task is None else self.task.name).task.dataset

    def plugins(self) -> PluginRegistry:
        """The installed plugins this project was read with."""
        if self.registry is None:
            from monalia.api.registry import default_registry

            self.registry = default_registry()
        return self.registry

    def trainer_plugin(self, name: str) -> Any:
        """A trainer of the named plugin, to load a model it made (`Trainer.load`).

        The project's own trainer when it is that plugin, else one with default settings: a
        model's folder holds everything needed to score with it.
        """
        if self.trainer is not None and self.trainer.info.name == name:
            return self.trainer.create()
        info = self.plugins().get("trainer", name)
        return info.cls(context=self.context("trainer"))

    @property
    def dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    @property
    def data_dir(self) -> Path:
        return resolve_path(self.dir, self.file.project.data_dir)

    @property
    def catalog_url(self) -> str:
        """The catalog URL: ``$MONALIA_CATALOG`` if set, else the file's, SQLite paths resolved."""
        url = os.environ.get(CATALOG_ENV) or self.file.project.catalog
        return resolve_catalog_url(url, self.dir, self.file.project.catalog_password_env)

    @property
    def url_policy(self) -> UrlPolicy:
        section = self.file.project
        return UrlPolicy(
            allow_file=section.allow_file_urls,
            allow_private=section.allow_private_addresses,
            max_redirects=section.max_redirects,
        )

    def context(self, instance: str) -> PluginContext:
        return PluginContext(
            instance=instance,
            project_dir=self.dir,
            data_dir=self.data_dir,
            base_iri=self.file.project.base_iri,
            url_policy=self.url_policy,
        )


# -- loading -----------------------------------------------------------------------------------


def load_project(path: Path, registry: PluginRegistry | None = None) -> Project:
    """Read, validate and resolve a project file; raise `ConfigError` naming key and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read project file {path}: {exc}") from None
    return parse_project(text, path, registry)


def parse_project(text: str, path: Path | None, registry: PluginRegistry | None = None) -> Project:
    """Validate the text of a project file; `path` is where it lives (for messages and paths)."""
    name = str(path) if path else PROJECT_FILE
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML: {exc}") from None
    lines = KeyLines(text)

    def fail(loc: tuple[Any, ...], message: str) -> ConfigError:
        keys = ".".join(str(part) for part in loc if not isinstance(part, int))
        line = lines.line_of(loc)
        where = f"{name} line {line}" if line else name
        return ConfigError(f"{where}: {keys}: {message}" if keys else f"{where}: {message}")

    _reject_secrets(data, (), fail)
    if registry is None:
        from monalia.api.registry import default_registry

        registry = default_registry()
    registry.pm.manifest  # noqa: B018 -- read before the first model is built (see the manifest)
    try:
        model = ProjectFile.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, (), fail) from None
    from monalia.catalog.db_url import parse_db_url

    try:
        catalog_url = parse_db_url(model.project.catalog)
    except ValueError:
        raise fail(
            ("project", "catalog"), f"{model.project.catalog!r} is not a SQLAlchemy URL"
        ) from None
    if catalog_url.password:
        raise fail(
            ("project", "catalog"),
            "a password in the catalog URL is a secret: remove it and set "
            "catalog_password_env to the name of the variable holding it",
        )

    project = Project(path=path, file=model, registry=registry)
    registry = project.plugins()

    def instance(
        kind: str, key: str, loc: tuple[Any, ...], section: PluginSection
    ) -> PluginInstance:
        from monalia.errors import PluginError

        try:
            info = registry.get(kind, section.plugin)
        except PluginError as exc:
            raise fail((*loc, "plugin"), exc.message) from None
        values = dict(section.model_extra or {})
        try:
            settings = info.cls.Settings.model_validate(values)
        except ValidationError as exc:
            raise _first_error(exc, loc, fail) from None
        return PluginInstance(kind, key, info, settings, project.context(key))

    for key, section in model.sources.items():
        project.sources[key] = instance("source", key, ("sources", key), section)
    for key, section in model.sinks.items():
        project.sinks[key] = instance("sink", key, ("sinks", key), section)
    if model.labeler is not None:
        project.labeler = instance("labeler", "labeler", ("labeler",), model.labeler)
    elif model.classes.targets or model.classes.preset:
        # Classes without a [labeler] table use the SKOS labeler with its defaults.
        project.labeler = instance(
            "labeler", "labeler", ("labeler",), PluginSection(plugin=DEFAULT_LABELER)
        )
    if model.tasks and (model.classes.targets or model.classes.preset):
        raise fail(
            ("classes",),
            "classes are named by each [tasks.NAME] table when the project has tasks: move "
            "targets and preset into a task",
        )
    datasets: dict[str, str] = {}
    for key, section in model.tasks.items():
        if not (section.targets or section.preset):
            raise fail(("tasks", key), "a task names its classes: set targets or preset")
        dataset = section.dataset or key
        if dataset in datasets:
            raise fail(
                ("tasks", key, "dataset"),
                f"dataset {dataset!r} is task {datasets[dataset]!r}'s: each task has its own",
            )
        datasets[dataset] = key
        if "language" not in section.model_fields_set:
            section.language = model.classes.language
        if "schemes" not in section.model_fields_set:
            section.schemes = list(model.classes.schemes)
        fields = tuple(section.fields)
        vocab_id = section.vocab_id or next(
            (name for name in fields if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,40}", name)),
            DEFAULT_VOCAB_ID,
        )
        project.tasks[key] = Task(key, fields, vocab_id, dataset, explicit=True)
        labeler = section.labeler or model.labeler or PluginSection(plugin=DEFAULT_LABELER)
        loc = ("tasks", key, "labeler") if section.labeler else ("labeler",)
        project.task_labelers[key] = instance("labeler", "labeler", loc, labeler)
    if model.trainer is not None:
        project.trainer = instance("trainer", "trainer", ("trainer",), model.trainer)
    elif registry.knows("trainer", DEFAULT_TRAINER):
        project.trainer = DeferredPluginInstance(
            "trainer",
            "trainer",
            project.context("trainer"),
            lambda: instance(
                "trainer", "trainer", ("trainer",), PluginSection(plugin=DEFAULT_TRAINER)
            ),
        )
    return project


def _reject_secrets(data: Any, loc: tuple[Any, ...], fail) -> None:
    found = find_secret(data, loc)
    if found is not None:
        raise fail(*found)


def _first_error(exc: ValidationError, prefix: tuple[Any, ...], fail) -> ConfigError:
    errors = exc.errors()
    first = errors[0]
    loc = (*prefix, *first["loc"])
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "required, but missing"
    else:
        message = f"{first['msg']} (got {first.get('input')!r})"
    more = len(errors) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return fail(loc, message)


class KeyLines:
    """Which line of a TOML text each key is on: enough to point a user at a mistake."""

    _TABLE = re.compile(r"^\s*\[\[?\s*(?P<key>[^\]]+?)\s*\]\]?\s*(#.*)?$")
    _ASSIGN = re.compile(
        r"^\s*(?P<key>(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
        r"(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
    )

    def __init__(self, text: str):
        self.lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            match = self._TABLE.match(line)
            if match:
                table = self._split(match["key"])
                self.lines.setdefault(table, number)
                continue
            match = self._ASSIGN.match(line)
            if match:
                self.lines.setdefault((*table, *self._split(match["key"])), number)

    @staticmethod
    def _split(dotted: str) -> tuple[str, ...]:
        parts = re.findall(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+)", dotted)
        return tuple(a or b or c for a, b, c in parts)

    def line_of(self, loc: tuple[Any, ...]) -> int | None:
        """The line of the key at `loc`, or of its nearest enclosing key that has one."""
        keys = tuple(str(part) for part in loc if not isinstance(part, int))
        while keys:
            if keys in self.lines:
                return self.lines[keys]
            keys = keys[:-1]
        return None


def starter_file() -> str:
    """The commented project file that `monalia init` writes."""
    from importlib.resources import files

    return (files("monalia") / "templates" / "monalia.toml").read_text(encoding="utf-8")


__all__ = [
    "PROJECT_FILE",
    "STAGES",
    "KeyLines",
    "Plugin",
    "PluginInstance",
    "Project",
    "find_project_file",
    "load_project",
    "parse_project",
    "starter_file",
]
