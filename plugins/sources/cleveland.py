"""Sources for the Cleveland Museum of Art Open Access data: the CSV dump and the JSON API.

``cleveland-csv`` streams ``data.csv`` (about 130 MB; never loaded whole) with columns mapped by
name from a configurable mapping; ``cleveland-api`` pages the artworks API with ``skip`` and
``limit``, optionally only works with images and only CC0 ones. Both make the same record; the
image of the size chosen by `image_size` (``web`` by default: what training needs) becomes the
record's image, and the URLs of every size stay in the raw payload.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from monalia import hookimpl
from monalia.api.csv_file import CsvFile
from monalia.api.plugin import PluginSettings
from monalia.api.records import ImageRef, Record, Subject
from monalia.api.source import RawItem, Source, SourceState
from monalia.errors import ConfigError, RecordError, SourceUnavailable
from monalia.formats import mapping
from monalia.net.http import HttpClient, HttpSettings

API = "https://openaccess-api.clevelandart.org/api/artworks/"
INSTITUTION = "The Cleveland Museum of Art"
SIZES = ("web", "print", "full")
SUBJECT_FIELDS = ("type", "technique", "department", "culture")

# Record field -> CSV column names tried in order (the dump's names, then older variants).
CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id",),
    "accession_number": ("accession_number",),
    "title": ("title",),
    "creation_date": ("creation_date",),
    "creation_date_earliest": ("creation_date_earliest",),
    "creation_date_latest": ("creation_date_latest",),
    "creators": ("creators", "creator", "artists_tags"),
    "culture": ("culture",),
    "technique": ("technique",),
    "department": ("department",),
    "type": ("type",),
    "share_license_status": ("share_license_status",),
    "url": ("url",),
    "description": ("wall_description", "digital_description"),
    "updated_at": ("updated_at",),
    "image_web": ("image_web", "image_web__url", "images_web_url", "images.web.url"),
    "image_print": ("image_print", "image_print__url", "images_print_url", "images.print.url"),
    "image_full": ("image_full", "image_full__url", "images_full_url", "images.full.url"),
}


class ClevelandMapping(PluginSettings):
    # the image kept: web, print or full (the others stay in the raw payload)
    image_size: str = Field("web", pattern="^(web|print|full)$")
    cc0_only: bool = False  # leave out works whose share_license_status is not CC0
    with_image_only: bool = True  # only works that have an image


def artwork_record(values: dict[str, Any], raw: Any, settings: ClevelandMapping) -> Record | None:
    """A record from an artwork's values (API names); None when the settings leave it out."""
    identifier = mapping.text(values.get("id"), "id")
    if not identifier:
        raise RecordError("the artwork has no id")
    license_status = mapping.text(values.get("share_license_status"), "share_license_status")
    if settings.cc0_only and (license_status or "").upper() != "CC0":
        return None
    urls = {size: values.get(f"image_{size}") for size in SIZES}
    chosen = urls.get(settings.image_size) or next((u for u in urls.values() if u), None)
    if settings.with_image_only and not chosen:
        return None
    date = mapping.text(values.get("creation_date"), "creation_date")
    start, end = mapping.years_of(date)
    subjects = [
        Subject(label=text, lang="en", field=name)
        for name in SUBJECT_FIELDS
        for text in mapping.texts(values.get(name), name)
    ]
    rights = (
        "http://creativecommons.org/publicdomain/zero/1.0/"
        if (license_status or "").upper() == "CC0"
        else license_status
    )
    return Record(
        source_id=identifier,
        title=mapping.text(values.get("title"), "title"),
        description=mapping.text(values.get("description"), "description"),
        creators=creator_names(values.get("creators")),
        date=date,
        date_start=mapping.year(values.get("creation_date_earliest"), "creation_date_earliest")
        or start,
        date_end=mapping.year(values.get("creation_date_latest"), "creation_date_latest") or end,
        institution=INSTITUTION,
        rights=rights,
        landing_page=mapping.text(values.get("url"), "url"),
        images=[ImageRef(url=chosen, is_main=True)] if chosen else [],
        subjects=subjects,
        modified=mapping.text(values.get("updated_at"), "updated_at"),
        raw=raw,
    )


def creator_names(value: Any) -> list[str]:
    """Creator descriptions from the API's objects, or the CSV's flattened text of them."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in "[{":
            for load in (json.loads, ast.literal_eval):
                try:
                    return creator_names(load(text))
                except (ValueError, SyntaxError):
                    continue
        return [part.strip() for part in text.split(";") if part.strip()]
    if isinstance(value, dict):
        value = [value]
    names = []
    for creator in value or []:
        if isinstance(creator, dict):
            name = creator.get("description") or creator.get("name")
            if name:
                names.append(str(name).strip())
        elif isinstance(creator, str) and creator.strip():
            names.append(creator.strip())
    return names


# -- the CSV dump -----------------------------------------------------------------------------------


class ClevelandCsvSettings(ClevelandMapping):
    path: str  # the open-access data.csv, streamed
    encoding: str = "utf-8-sig"  # the file's encoding
    delimiter: str = ","  # the CSV delimiter
    columns: dict[str, str] = Field(default_factory=dict)  # record field -> CSV column


class ClevelandCsvSource(Source):
    """Artworks from the Cleveland Museum of Art's open-access CSV, streamed row by row."""

    name = "cleveland-csv"
    Settings = ClevelandCsvSettings
    batch_size = 5000

    def reads_local_input(self) -> bool:
        return True  # a local file: it may name local image files (allow_file_urls)

    def open(self) -> None:
        unknown = set(self.settings.columns) - set(CSV_COLUMNS)
        if unknown:
            raise ConfigError(
                f"{self.context.instance}: columns names unknown fields {sorted(unknown)} "
                f"(known: {', '.join(CSV_COLUMNS)})"
            )
        self.path = self.input_file()
        self.reader = CsvFile(self.path, self.settings.encoding, self.settings.delimiter)
        header = {name.strip(): i for i, name in enumerate(self.reader.header)}
        self.columns: list[tuple[str, int]] = []
        for field, candidates in CSV_COLUMNS.items():
            configured = self.settings.columns.get(field)
            names = (configured,) if configured else candidates
            index = next((header[n] for n in names if n in header), None)
            if index is None and configured:
                raise SourceUnavailable(
                    f"{self.context.instance}: column {configured!r} (for {field}) is not in "
                    f"the header of {self.path.name}"
                )
            if index is not None:
                self.columns.append((field, index))
        if not any(field == "id" for field, _ in self.columns):
            raise SourceUnavailable(
                f"{self.context.instance}: no id column in {self.path.name} "
                f'(map it with columns = {{ id = "..." }})'
            )
        self.width = len(self.reader.header)

    def estimate_total(self, state: SourceState) -> int | None:
        return None if state.checkpoint else self.reader.estimate_rows()

    def items(self, state: SourceState) -> Iterator[RawItem]:
        for number, row, checkpoint in self.reader.rows(state.checkpoint):
            yield RawItem(key=f"row {number}", payload=row, checkpoint=checkpoint)

    def parse(self, item: RawItem) -> Record | None:
        row: list[str] = item.payload
        self.reader.check_row(row)
        if len(row) != self.width:
            raise RecordError(f"{len(row)} columns where the header has {self.width}")
        values = {field: row[index] for field, index in self.columns if row[index] != ""}
        raw = {self.reader.header[i]: cell for i, cell in enumerate(row) if cell != ""}
        return artwork_record(values, raw, self.settings)


# -- the JSON API -------------------------------------------------------------------------------------


class ClevelandApiSettings(ClevelandMapping):
    endpoint: str = API  # the Open Access API
    limit: int = Field(100, ge=1, le=1000)  # page size
    filters: dict[str, str] = Field(default_factory=dict)  # more API parameters: type, q, ...
    http: HttpSettings = Field(default_factory=HttpSettings)


class ClevelandApiSource(Source):
    """Artworks from the Cleveland Museum of Art Open Access API (skip/limit paging)."""

    name = "cleveland-api"
    Settings = ClevelandApiSettings

    def open(self) -> None:
        self.client = HttpClient(self.settings.http, policy=self.context.url_policy)

    def close(self) -> None:
        self.client.close()

    def params(self, skip: int, limit: int) -> dict[str, Any]:
        params: dict[str, Any] = dict(self.settings.filters)
        params.update(skip=skip, limit=limit)
        if self.settings.with_image_only:
            params["has_image"] = 1
        if self.settings.cc0_only:
            params["cc0"] = 1
        return params

    def page(self, skip: int, limit: int) -> dict[str, Any]:
        data = self.client.get_json(self.settings.endpoint, params=self.params(skip, limit))
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise SourceUnavailable(
                f"{self.context.instance}: the API answered without a 'data' list (skip={skip})"
            )
        return data

    def estimate_total(self, state: SourceState) -> int | None:
        skip = (state.checkpoint or {}).get("skip", 0)
        total = (self.page(0, 1).get("info") or {}).get("total")
        return None if total is None else max(0, int(total) - skip)

    def items(self, state: SourceState) -> Iterator[RawItem]:
        skip = (state.checkpoint or {}).get("skip", 0)
        while True:
            data = self.page(skip, self.settings.limit)
            artworks = data["data"]
            for offset, artwork in enumerate(artworks):
                key = artwork.get("id") if isinstance(artwork, dict) else None
                yield RawItem(
                    key=f"id {key}" if key is not None else f"item {skip + offset}",
                    payload=artwork,
                    checkpoint={"skip": skip + offset + 1},
                )
            total = (data.get("info") or {}).get("total")
            skip += len(artworks)
            if len(artworks) < self.settings.limit or (total is not None and skip >= int(total)):
                return

    def parse(self, item: RawItem) -> Record | None:
        artwork = item.payload
        if not isinstance(artwork, dict):
            raise RecordError(f"expected an object, got {type(artwork).__name__}")
        values = dict(artwork)
        images = artwork.get("images") or {}
        if not isinstance(images, dict):
            raise RecordError("'images' is not an object")
        for size in SIZES:
            entry = images.get(size)
            values[f"image_{size}"] = entry.get("url") if isinstance(entry, dict) else None
        values["description"] = artwork.get("wall_description") or artwork.get(
            "digital_description"
        )
        return artwork_record(values, artwork, self.settings)


@hookimpl
def register_sources():
    return [ClevelandCsvSource, ClevelandApiSource]
