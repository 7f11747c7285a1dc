"""The project file: every mistake is one line naming the key and its line."""

from __future__ import annotations

import pytest

from monalia.errors import ConfigError
from monalia.project import KeyLines, parse_project, starter_file

VALID = """\
[project]
catalog = "sqlite:///cat.sqlite"

[sources.local]
plugin = "jsonl"
path = "records.jsonl"

[sinks.files]
plugin = "turtle"
path = "out.ttl"
"""


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as error:
        parse_project(text, None)
    message = str(error.value)
    assert "\n" not in message, f"the error should be one line: {message!r}"
    return message


def test_valid_file_resolves_plugins_and_paths(tmp_path):
    project = parse_project(VALID, tmp_path / "monalia.toml")
    assert project.sources["local"].info.name == "jsonl"
    assert project.sinks["files"].info.name == "turtle"
    assert project.catalog_url == f"sqlite:///{tmp_path / 'cat.sqlite'}"


def test_unknown_key_in_a_plugin_section_names_key_and_line():
    text = VALID.replace('path = "records.jsonl"', 'path = "records.jsonl"\ncolour = "blue"')
    assert error_of(text) == "monalia.toml line 7: sources.local.colour: unknown key"


def test_unknown_top_level_key_names_its_line():
    assert error_of(VALID + "\n[extras]\nx = 1\n") == "monalia.toml line 12: extras: unknown key"


def test_wrong_type_names_key_line_and_value():
    text = VALID.replace('path = "out.ttl"', "path = 42")
    message = error_of(text)
    assert message.startswith("monalia.toml line 10: sinks.files.path: "), message
    assert "42" in message


def test_missing_setting_is_named():
    text = VALID.replace('path = "records.jsonl"\n', "")
    assert error_of(text) == "monalia.toml line 4: sources.local.path: required, but missing"


def test_unknown_plugin_lists_the_installed_ones():
    message = error_of(VALID.replace('plugin = "jsonl"', 'plugin = "jsonlines"'))
    assert message.startswith(
        "monalia.toml line 5: sources.local.plugin: unknown source plugin 'jsonlines'"
    )
    assert "jsonl" in message.split("installed")[1]


def test_secret_in_the_file_is_refused():
    text = VALID.replace('path = "records.jsonl"', 'path = "records.jsonl"\napi_key = "abc123"')
    message = error_of(text)
    assert "sources.local.api_key" in message and "api_key_env" in message
    assert "abc123" not in message


def test_password_in_the_catalog_url_is_refused():
    message = error_of(VALID.replace("sqlite:///cat.sqlite", "postgresql://u:hunter2@db/x"))
    assert "line 2" in message and "catalog_password_env" in message and "hunter2" not in message


def test_invalid_toml_reports_the_position():
    message = error_of("[project\ncatalog = 1\n")
    assert "not valid TOML" in message and "line 1" in message


def test_catalog_password_comes_from_the_environment(monkeypatch, tmp_path):
    text = VALID.replace(
        'catalog = "sqlite:///cat.sqlite"',
        'catalog = "postgresql+psycopg://monalia@db/x"\ncatalog_password_env = "MONALIA_TEST_PW"',
    )
    project = parse_project(text, tmp_path / "monalia.toml")
    with pytest.raises(ConfigError, match=r"\$MONALIA_TEST_PW, which is not set"):
        _ = project.catalog_url
    monkeypatch.setenv("MONALIA_TEST_PW", "pw")
    assert project.catalog_url == "postgresql+psycopg://monalia:pw@db/x"


def test_starter_file_is_valid(tmp_path):
    project = parse_project(starter_file(), tmp_path / "monalia.toml")
    assert "local" in project.sources and "files" in project.sinks


def test_key_lines_follow_tables_and_dotted_keys():
    lines = KeyLines('a = 1\n[t.u]\nb.c = 2\n[[arr]]\n"quoted key" = 3\n')
    assert lines.line_of(("a",)) == 1
    assert lines.line_of(("t", "u", "b", "c")) == 3
    assert lines.line_of(("arr", 0, "quoted key")) == 5
    assert lines.line_of(("t", "u", "missing")) == 2


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///relative/cat.sqlite",
        "sqlite:////abs/cat.sqlite",
        "sqlite://",
        "postgresql+psycopg://monalia@db:5433/x?sslmode=require",
        "postgresql://user@[::1]:5432/test",
        "mysql+pymysql://u@h/d",
    ],
)
def test_catalog_urls_read_without_sqlalchemy_read_as_sqlalchemy_reads_them(url):
    from sqlalchemy.engine import make_url

    from monalia.catalog.db_url import parse_db_url

    ours, theirs = parse_db_url(url), make_url(url)
    assert (ours.drivername, ours.username, ours.host, ours.database) == (
        theirs.drivername,
        theirs.username,
        theirs.host,
        theirs.database,
    )
    assert ours.port == (str(theirs.port) if theirs.port else None)
    if ours.username is not None:
        # a password set from the environment survives SQLAlchemy's reading, whatever it holds
        secret = "p@ss:w/rd %20?#"
        assert make_url(ours.set(password=secret).render()).password == secret
