"""Source: the Europeana Search API, paged with its cursor to the very end.

The API key is read from an environment variable (``EUROPEANA_API_KEY`` unless `api_key_env`
says otherwise) and never written anywhere: it is masked in messages and scrubbed from the raw
payload (Europeana echoes it inside ``link`` and ``guid``), whatever characters it holds. Language maps
(``*LangAware``) are kept in the raw payload; the record takes the preferred language's value and
keeps the language of each subject label. A complete run bookmarks the newest
``timestamp_update``; the next one asks only for items updated since.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import Field, field_validator

from monalia import hookimpl
from monalia.api.plugin import PluginSettings
from monalia.api.records import ImageRef, Record, Subject
from monalia.api.source import RawItem, Source, SourceState
from monalia.errors import ConfigError, RecordError, SourceUnavailable
from monalia.formats import mapping
from monalia.net.http import HttpClient, HttpSettings

ENDPOINT = "https://api.europeana.eu/record/v2/search.json"
_SINCE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?Z?)?")


class EuropeanaSettings(PluginSettings):
    endpoint: str = ENDPOINT  # the Search API
    # the variable holding the API key (the key is never a setting)
    api_key_env: str = "EUROPEANA_API_KEY"
    query: str = "*"  # the search query
    # query filters, one qf parameter each
    qf: list[str] = Field(default_factory=lambda: ["TYPE:IMAGE"])
    reusability: str | None = "open"  # open, restricted, permission; None: any
    media: bool | None = True  # only items with a media file Europeana can reach
    profile: str = "rich"  # the API's response profile
    rows: int = Field(100, ge=1, le=100)  # the API's maximum page size
    language: str = "en"  # preferred language of titles and descriptions
    http: HttpSettings = Field(default_factory=HttpSettings)

    @field_validator("reusability")
    @classmethod
    def _known_reusability(cls, value: str | None) -> str | None:
        if value is not None and value not in ("open", "restricted", "permission"):
            raise ValueError("must be open, restricted or permission")
        return value


class EuropeanaSource(Source):
    """Items of the Europeana Search API (query, qf filters, reusability, media, profile)."""

    name = "europeana"
    Settings = EuropeanaSettings
    replication_key = "modified"

    def open(self) -> None:
        self.key = self.context.secret(self.settings.api_key_env, "the Europeana API key")
        self.client = HttpClient(
            self.settings.http, secrets=[self.key], policy=self.context.url_policy
        )

    def close(self) -> None:
        self.client.close()

    def params(self, state: SourceState, cursor: str, rows: int | None = None) -> list[tuple]:
        params: list[tuple[str, Any]] = [
            ("wskey", self.key),
            ("query", self.settings.query),
            ("rows", rows if rows is not None else self.settings.rows),
            ("profile", self.settings.profile),
            ("cursor", cursor),
        ]
        params += [("qf", qf) for qf in self.settings.qf]
        since = state.changed_after
        if since:
            if not _SINCE.fullmatch(str(since)):
                raise ConfigError(f"--since {since!r} is not a date (YYYY-MM-DD)")
            stamp = str(since) if "T" in str(since) else f"{since}T00:00:00Z"
            params.append(("qf", f"timestamp_update:[{stamp} TO *]"))
        if self.settings.reusability:
            params.append(("reusability", self.settings.reusability))
        if self.settings.media is not None:
            params.append(("media", "true" if self.settings.media else "false"))
        return params

    def page(self, params) -> dict[str, Any]:
        data = self.client.get_json(self.settings.endpoint, params=params, scrub_secrets=True)
        if not isinstance(data, dict) or data.get("success") is False:
            error = data.get("error") if isinstance(data, dict) else None
            raise SourceUnavailable(
                f"{self.context.instance}: the API answered an error: {error or data!r}"[:300]
            )
        return data

    def estimate_total(self, state: SourceState) -> int | None:
        if state.checkpoint:
            return None
        return self.page(self.params(state, "*", rows=0)).get("totalResults")

    def items(self, state: SourceState) -> Iterator[RawItem]:
        checkpoint = state.checkpoint or {}
        cursor, skip = checkpoint.get("cursor", "*"), checkpoint.get("skip", 0)
        while cursor:
            data = self.page(self.params(state, cursor))
            items = data.get("items") or []
            if not isinstance(items, list):
                raise SourceUnavailable(f"{self.context.instance}: 'items' is not a list")
            following = data.get("nextCursor")
            for index, item in enumerate(items):
                if index < skip:
                    continue
                key = item.get("id") if isinstance(item, dict) else None
                # after the page's last item, resume from the next page
                done_page = index + 1 == len(items)
                point = (
                    {"cursor": following, "skip": 0}
                    if done_page
                    else {"cursor": cursor, "skip": index + 1}
                )
                yield RawItem(
                    key=str(key or f"item {index} of a page"), payload=item, checkpoint=point
                )
            if not items:
                return
            cursor, skip = following, 0

    def parse(self, item: RawItem) -> Record:
        data = item.payload
        if not isinstance(data, dict):
            raise RecordError(f"expected an object, got {type(data).__name__}")
        identifier = data.get("id")
        if not isinstance(identifier, str) or not identifier.strip("/"):
            raise RecordError("the item has no id")
        if not self.client.scrubs_bodies:  # else the page was scrubbed before it was decoded
            data = scrub(data, self.key)
        language = self.settings.language
        title = pick(data.get("dcTitleLangAware"), language) or mapping.text(
            data.get("title"), "title"
        )
        description = pick(data.get("dcDescriptionLangAware"), language) or mapping.text(
            data.get("dcDescription"), "description"
        )
        creators = [
            text
            for text in flatten(data.get("dcCreatorLangAware"), language)
            if not mapping.looks_like_iri(text)
        ] or [
            t
            for t in mapping.texts(data.get("dcCreator"), "creators")
            if not mapping.looks_like_iri(t)
        ]
        years = [y for y in mapping.texts(data.get("year"), "year") if y]
        date = years[0] if years else None
        start, end = mapping.years_of(" ".join(years))
        images = [
            ImageRef(url=url, is_main=i == 0)
            for i, url in enumerate(dict.fromkeys(mapping.texts(data.get("edmIsShownBy"), "image")))
        ]
        if not images:
            images = [
                ImageRef(url=url, is_main=i == 0)
                for i, url in enumerate(mapping.texts(data.get("edmPreview"), "preview"))
            ]
        subjects = concept_subjects(data)
        return Record(
            source_id=identifier.strip("/"),
            iri="http://data.europeana.eu/item" + identifier,
            title=title,
            description=description,
            creators=list(dict.fromkeys(creators)),
            date=date,
            date_start=start,
            date_end=end,
            institution=mapping.text(data.get("dataProvider"), "dataProvider"),
            rights=mapping.text(data.get("rights"), "rights"),
            landing_page=(mapping.text(data.get("guid"), "guid") or "").split("?")[0] or None,
            images=images,
            subjects=subjects,
            modified=mapping.text(data.get("timestamp_update"), "timestamp_update"),
            raw=data,
        )


def concept_subjects(data: dict[str, Any]) -> list[Subject]:
    """Subjects from edmConcept URIs and their labels in every language, and dcSubject text."""
    subjects: list[Subject] = []
    for uri in mapping.texts(data.get("edmConcept"), "edmConcept"):
        if mapping.looks_like_iri(uri):
            subjects.append(Subject(uri=uri, field="edmConcept"))
    for lang, values in language_map(data.get("edmConceptPrefLabelLangAware")):
        subjects.extend(Subject(label=v, lang=lang, field="edmConceptLabel") for v in values)
    for lang, values in language_map(data.get("dcSubjectLangAware")):
        subjects.extend(
            Subject(uri=v, field="dcSubject")
            if mapping.looks_like_iri(v)
            else Subject(label=v, lang=lang, field="dcSubject")
            for v in values
        )
    unique: dict[tuple, Subject] = {}
    for subject in subjects:
        unique.setdefault((subject.uri, subject.label, subject.lang, subject.field), subject)
    return list(unique.values())


def language_map(value: Any) -> list[tuple[str | None, list[str]]]:
    """(language, values) pairs of a language map; ``def`` (no language) becomes None."""
    if not isinstance(value, dict):
        return []
    pairs = []
    for lang, values in value.items():
        texts = [str(v).strip() for v in (values if isinstance(values, list) else [values]) if v]
        pairs.append((None if lang in ("def", "") else lang, [t for t in texts if t]))
    return pairs


def flatten(value: Any, preferred: str) -> list[str]:
    """Every value of a language map, the preferred language first."""
    pairs = sorted(language_map(value), key=lambda p: (p[0] != preferred, p[0] is not None))
    return [text for _, texts in pairs for text in texts]


def pick(value: Any, preferred: str) -> str | None:
    values = flatten(value, preferred)
    return values[0] if values else None


def scrub(data: Any, secret: str | None) -> Any:
    """The item with the API key replaced by ``***`` wherever it is, however deep. Used only
    when the page could not be scrubbed as bytes (a key with non-ASCII or control characters):
    a walk of every nested language map costs more than the harvest's parsing."""
    if not secret:
        return data
    if isinstance(data, str):
        return data.replace(secret, "***") if secret in data else data
    if isinstance(data, dict):
        return {scrub(key, secret): scrub(value, secret) for key, value in data.items()}
    if isinstance(data, list):
        return [scrub(value, secret) for value in data]
    return data


@hookimpl
def register_sources():
    return [EuropeanaSource]
