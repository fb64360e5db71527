"""A rules folder (its layout: citycredit/rules/__init__.py): the current adopted schemes by
name (`<scheme>.yaml` beside `catalogue.yaml`), the drafts in `drafts/` and the grade
recognition tables in `recognition/` (SPEC §4, §6). The version of a scheme in force for a month
(with the earlier ones kept in `adopted/`) is citycredit/rules/adopted.py.
"""

from __future__ import annotations

from pathlib import Path

from .model import Recognition, Scheme
from .reading import RuleFileError, UnknownSchemeError, _display, _Map, _read, _Where
from .v1 import CATALOGUE_FILE, load_catalogue, load_scheme


def available_schemes(rules_dir: Path) -> dict[str, Path]:
    """Scheme name → file: every rules_dir/*.yaml except the catalogue, sorted by name."""
    rules_dir = Path(rules_dir)
    if not rules_dir.is_dir():
        raise RuleFileError(f"{_display(rules_dir)}: rules folder not found")
    return {p.stem: p for p in sorted(rules_dir.glob("*.yaml"))
            if p.name != CATALOGUE_FILE and p.is_file()}


def load_schemes(rules_dir: Path, names: list[str] | None = None) -> dict[str, Scheme]:
    """Load the schemes of a rules folder: all of them (by name), or the ones named.

    Only the named files are read, so a draft scheme elsewhere in the folder does not stop a
    run of the others; an unknown name is an UnknownSchemeError listing the available ones.
    """
    rules_dir = Path(rules_dir)
    available = available_schemes(rules_dir)
    if names is None:
        chosen = list(available)
    else:
        chosen = list(dict.fromkeys(name.strip() for name in names))
        unknown = [name for name in chosen if name not in available]
        if unknown:
            raise UnknownSchemeError(
                f"{_display(rules_dir)}: unknown scheme{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(n) for n in unknown)} (available: "
                f"{', '.join(available) or 'none'})")
    catalogue = load_catalogue(rules_dir)
    return {name: load_scheme(available[name], catalogue) for name in chosen}


DRAFTS_FOLDER = "drafts"
RECOGNITION_FOLDER = "recognition"


def available_drafts(rules_dir: Path) -> dict[str, Path]:
    """Draft name (file name without .yaml) → file, for rules_dir/drafts/*.yaml."""
    folder = Path(rules_dir) / DRAFTS_FOLDER
    return {p.stem: p for p in sorted(folder.glob("*.yaml")) if p.is_file()}


def load_draft(path: Path, rules_dir: Path | None = None) -> Scheme:
    """A candidate rule file (policy tools): checked exactly like an adopted scheme against the
    catalogue of `rules_dir` (default: the folder above drafts/)."""
    path = Path(path)
    rules_dir = Path(rules_dir) if rules_dir else path.resolve().parent.parent
    return load_scheme(path, load_catalogue(rules_dir), draft=True)

def available_recognitions(rules_dir: Path) -> dict[tuple[str, str], Path]:
    """(from, to) → file, for rules_dir/recognition/<from>__<to>.yaml."""
    folder = Path(rules_dir) / RECOGNITION_FOLDER
    out = {}
    for p in sorted(folder.glob("*.yaml")):
        source, sep, target = p.stem.partition("__")
        if sep and source and target:
            out[(source, target)] = p
    return out


def load_recognition(path: Path, schemes: dict[str, Scheme]) -> Recognition:
    """Read and check `<from>__<to>.yaml` (`grades: {<from grade>: <to grade>}`): both schemes
    adopted, every grade of <from> mapped, to a grade <to> has. RuleFileError otherwise."""
    path = Path(path)
    _, document = _read(path)
    where = _Where(_display(path))
    source, sep, target = path.stem.partition("__")
    if not sep:
        raise where.error("a recognition table is named <from>__<to>.yaml")
    for role, name in (("from", source), ("to", target)):
        if name not in schemes:
            raise where.error(f"the {role} scheme {name!r} is not an adopted scheme "
                              f"(adopted: {', '.join(schemes)})")
    if not isinstance(document, _Map) or not isinstance(document.get("grades"), dict):
        raise where.error("must be a mapping with 'grades: {<from grade>: <to grade>, ...}'",
                          "grades")
    where = _Where(where.file, "", document)
    grades = {str(k): str(v) for k, v in document["grades"].items()}
    have = [g.grade for g in schemes[source].grades]
    targets = {g.grade for g in schemes[target].grades}
    missing = [g for g in have if g not in grades]
    if missing:
        raise where.error(f"grade(s) {', '.join(missing)} of {source} are not mapped", "grades")
    unknown = sorted(set(grades) - set(have))
    if unknown:
        raise where.error(f"{source} has no grade(s) {', '.join(unknown)}", "grades")
    wrong = sorted({v for v in grades.values() if v not in targets})
    if wrong:
        raise where.error(f"{target} has no grade(s) {', '.join(wrong)}", "grades")
    return Recognition(source, target, grades, path)
