"""The Tutorial Museum source passes the contract every monalia source passes."""

from pathlib import Path

from monalia_tutorial_museum import TutorialMuseumSource

from monalia.testing import check_source_contract

HERE = Path(__file__).resolve().parent


def test_the_tutorial_museum(tmp_path):
    result = check_source_contract(
        TutorialMuseumSource,
        {"path": "objects.json"},
        tmp_path,
        project_dir=HERE,
        expect_failed=1,  # the object without an inventory number
    )
    assert result.first.counts["new"] == 3
