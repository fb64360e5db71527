"""Every adopted version of a scheme is kept; the version in force for a month (issue 24, item 1):
`citycredit adopt`, rules/adopted/<scheme>/<effective_from>.yaml, schemes_in_force."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from citycredit.cli import cli
from citycredit.rules import (RuleFileError, adopt, adopted_versions, available_schemes,
                              load_schemes, scheme_in_force, schemes_in_force)

ROOT = Path(__file__).resolve().parents[2]


def revised(text: str, version: str, effective_from: str, base_score: int | None = None) -> str:
    """haibei.yaml's text with another version, effective_from and (optionally) base_score."""
    text = text.replace('version: "2026.1"', f'version: "{version}"')
    text = text.replace("effective_from: 2026-01", f"effective_from: {effective_from}")
    if base_score is not None:
        text = text.replace("base_score: 1000", f"base_score: {base_score}")
    return text


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """The shipped catalogue and haibei (effective_from 2026-01), and a draft of haibei."""
    folder = tmp_path / "rules"
    (folder / "drafts").mkdir(parents=True)
    shutil.copy(ROOT / "rules" / "catalogue.yaml", folder)
    shutil.copy(ROOT / "rules" / "haibei.yaml", folder)
    return folder


def draft(rules_dir: Path, name: str, version: str, effective_from: str, base: int) -> Path:
    path = rules_dir / "drafts" / f"haibei-{name}.yaml"
    path.write_text(revised((ROOT / "rules" / "haibei.yaml").read_text("utf-8"), version,
                            effective_from, base), "utf-8")
    return path


def test_adopting_keeps_the_replaced_version_byte_for_byte_and_scores_each_month_by_its_own(
        rules_dir):
    first = load_schemes(rules_dir, ["haibei"])["haibei"]
    original = (rules_dir / "haibei.yaml").read_bytes()
    done = adopt(rules_dir, draft(rules_dir, "2026-07", "2026.7", "2026-07", 1007))

    assert done.archived == rules_dir / "adopted" / "haibei" / "2026-01.yaml"
    assert done.archived.read_bytes() == original
    assert adopted_versions(rules_dir, "haibei") == {"2026-01": done.archived}
    assert (rules_dir / "haibei.yaml").read_bytes() == \
        (rules_dir / "drafts" / "haibei-2026-07.yaml").read_bytes()
    assert list(available_schemes(rules_dir)) == ["haibei"]    # adopted/ is no scheme of its own

    for month, version, base in [("2026-01", first.rules_version, 1000),
                                 ("2026-06", first.rules_version, 1000),
                                 ("2026-07", done.scheme.rules_version, 1007),
                                 ("2027-01", done.scheme.rules_version, 1007)]:
        scheme = scheme_in_force(rules_dir, "haibei", month)
        assert (scheme.rules_version, scheme.base_score) == (version, base), month
    assert done.scheme.rules_version.startswith("2026.7+")
    assert done.scheme.rules_version != first.rules_version


def test_a_month_before_the_first_version_has_none_in_force(rules_dir):
    assert scheme_in_force(rules_dir, "haibei", "2025-12") is None
    in_force, not_yet = schemes_in_force(rules_dir, "2025-12")
    assert (in_force, not_yet) == ({}, {"haibei": "2026-01"})
    adopt(rules_dir, draft(rules_dir, "2026-07", "2026.7", "2026-07", 1007))
    in_force, not_yet = schemes_in_force(rules_dir, "2025-12")
    assert (in_force, not_yet) == ({}, {"haibei": "2026-01"})     # the first version, kept


def test_an_effective_from_not_later_than_the_current_one_is_refused_and_nothing_changes(
        rules_dir):
    before = (rules_dir / "haibei.yaml").read_bytes()
    for month in ("2026-01", "2025-06"):
        with pytest.raises(RuleFileError, match=rf"haibei-early.yaml: field 'effective_from': "
                                                rf"{month} is not later than 2026-01, the "
                                                rf"effective_from of the current version 2026.1"):
            adopt(rules_dir, draft(rules_dir, "early", "2026.0", month, 1007))
    assert (rules_dir / "haibei.yaml").read_bytes() == before
    assert not (rules_dir / "adopted").exists()


def test_a_broken_draft_is_refused_before_anything_moves(rules_dir):
    bad = draft(rules_dir, "bad", "2026.7", "2026-07", 1007)
    bad.write_text(bad.read_text("utf-8").replace("base_score: 1007", "base_score: lots"), "utf-8")
    with pytest.raises(RuleFileError,
                       match=r"haibei-bad.yaml: field 'base_score': must be a number"):
        adopt(rules_dir, bad)
    assert not (rules_dir / "adopted").exists()


def test_an_adopted_version_must_be_named_by_its_effective_from(rules_dir):
    kept = rules_dir / "adopted" / "haibei" / "2025-01.yaml"
    kept.parent.mkdir(parents=True)
    kept.write_text(revised((ROOT / "rules" / "haibei.yaml").read_text("utf-8"), "2025.1",
                            "2025-02"), "utf-8")
    with pytest.raises(RuleFileError, match=r"2025-01.yaml: field 'effective_from': is 2025-02, "
                                            r"but an adopted version's file is named by its "
                                            r"effective_from \(2025-02.yaml"):
        scheme_in_force(rules_dir, "haibei", "2025-06")


def test_citycredit_adopt_says_what_it_did_and_refuses_with_exit_2(rules_dir, monkeypatch):
    monkeypatch.setenv("CITYCREDIT_RULES", str(rules_dir))
    new = draft(rules_dir, "2026-07", "2026.7", "2026-07", 1007)
    result = CliRunner().invoke(cli, ["adopt", str(new)])
    assert result.exit_code == 0, result.output
    assert "haibei: adopted 2026.7 (2026.7+" in result.output
    assert "haibei: 2026.1 (2026.1+" in result.output
    assert "stays in force before 2026-07" in result.output
    again = CliRunner().invoke(cli, ["adopt", str(new)])
    assert again.exit_code == 2
    assert "REFUSED:" in again.output and "2026-07 is not later than 2026-07" in again.output


def test_a_new_version_with_an_adopted_version_label_is_refused(rules_dir):
    """Two rule sets under one label would read as one in run reports and lookups: a new version
    reusing the label of the current or an earlier adopted version is refused, nothing changed."""
    adopt(rules_dir, draft(rules_dir, "2026-07", "2026.7", "2026-07", 1007))
    current = (rules_dir / "haibei.yaml").read_bytes()
    for label in ("2026.7", "2026.1"):          # the current version's, an earlier one's
        with pytest.raises(RuleFileError, match=f"field 'version': '{label}' is already the "
                                                "label of the version adopted from 2026-0"):
            adopt(rules_dir, draft(rules_dir, "2027-01", label, "2027-01", 1010))
    assert (rules_dir / "haibei.yaml").read_bytes() == current
    assert list(adopted_versions(rules_dir, "haibei")) == ["2026-01"]
