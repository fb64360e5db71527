"""The rules in force for a month: every adopted version of a scheme is kept (issue 24).

    rules/haibei.yaml                    the current adopted version (effective_from 2026-07)
    rules/adopted/haibei/2026-01.yaml    an earlier one, named by its effective_from

The version in force for score month M is the one with the latest `effective_from` ≤ M: the
current file when its effective_from ≤ M, else the latest earlier version kept under
`adopted/<scheme>/` whose name (its effective_from) ≤ M. A month before the scheme's first
version has no version in force: the scheme is not scored for it. The monthly run never scores
`adopted/` by itself (like drafts/ and recognition/, it is not a `<scheme>.yaml` of the folder).

:func:`adopt` is the one way a version replaces another (`citycredit adopt RULEFILE`): it checks
the new file like any scheme, refuses an effective_from not later than the current one's, moves
the current file, byte for byte (so its rules_version stays what it scored under), to
`adopted/<scheme>/<its effective_from>.yaml`, and installs the new file as `<scheme>.yaml`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .folders import load_schemes
from .model import Scheme
from .reading import RuleFileError, _display
from .v1 import load_catalogue, load_scheme

ADOPTED_FOLDER = "adopted"


def adopted_versions(rules_dir: Path, name: str) -> dict[str, Path]:
    """effective_from → file of the earlier adopted versions of scheme `name`, oldest first
    (rules_dir/adopted/<name>/<YYYY-MM>.yaml; the current <name>.yaml is not among them)."""
    folder = Path(rules_dir) / ADOPTED_FOLDER / name
    return {p.stem: p for p in sorted(folder.glob("*.yaml")) if p.is_file()}


def schemes_in_force(rules_dir: Path, month: str, names: list[str] | None = None
                     ) -> tuple[dict[str, Scheme], dict[str, str]]:
    """The schemes of a rules folder (all, or the ones named) as in force for score month
    `month` (YYYY-MM): (scheme → the adopted version with the latest effective_from ≤ month,
    scheme → its first effective month, for a scheme whose first version comes after `month`).

    Every current <scheme>.yaml named is read and checked as load_schemes does (an unknown name
    is an UnknownSchemeError, a broken file a RuleFileError); an earlier version only when it is
    the one in force (checked the same way, and that its name is its effective_from)."""
    rules_dir = Path(rules_dir)
    current = load_schemes(rules_dir, names)
    catalogue = load_catalogue(rules_dir) if current else None
    in_force: dict[str, Scheme] = {}
    not_yet: dict[str, str] = {}
    for name, scheme in current.items():
        if scheme.effective_from <= month:
            in_force[name] = scheme
            continue
        versions = adopted_versions(rules_dir, name)
        earlier = [effective for effective in versions if effective <= month]
        if earlier:
            in_force[name] = load_scheme(versions[earlier[-1]], catalogue, adopted_as=name)
        else:
            not_yet[name] = next(iter(versions), scheme.effective_from)
    return in_force, not_yet


def scheme_in_force(rules_dir: Path, name: str, month: str) -> Scheme | None:
    """The version of scheme `name` in force for `month`, or None before its first version."""
    return schemes_in_force(rules_dir, month, [name])[0].get(name)


@dataclass(frozen=True)
class Adopted:
    """What :func:`adopt` did: `installed` is now rules/<scheme>.yaml; `archived` holds the
    version it replaced (None for a new scheme)."""

    scheme: Scheme
    installed: Path
    archived: Path | None
    replaced: Scheme | None


def adopt(rules_dir: Path, rule_file: Path) -> Adopted:
    """Adopt `rule_file` (e.g. rules/drafts/haibei-2027.yaml) as the current version of its
    scheme. RuleFileError, with nothing changed, when the file is refused by the checks, its
    `version` is the label of an adopted version already, or its effective_from is not later
    than the current version's (a version in force is never
    replaced for months it already covers: correct it in place, reviewed, and re-publish those
    months with `citycredit run --rescore-with-current-rules`)."""
    rules_dir = Path(rules_dir)
    rule_file = Path(rule_file)
    catalogue = load_catalogue(rules_dir)
    new = load_scheme(rule_file, catalogue, draft=True)
    target = rules_dir / f"{new.scheme}.yaml"
    data = rule_file.read_bytes()
    replaced = archived = None
    if target.exists():
        replaced = load_scheme(target, catalogue)
        if new.effective_from <= replaced.effective_from:
            raise RuleFileError(
                f"{_display(rule_file)}: field 'effective_from': {new.effective_from} is not later "
                f"than {replaced.effective_from}, the effective_from of the current version "
                f"{replaced.version} ({_display(target)}); a new version starts after the one "
                f"in force (to correct the current version itself, edit {_display(target)})")
        labels = {replaced.version: (replaced.effective_from, target)}
        for effective, path in adopted_versions(rules_dir, new.scheme).items():
            labels.setdefault(load_scheme(path, catalogue, adopted_as=new.scheme).version,
                              (effective, path))
        if new.version in labels:
            effective, path = labels[new.version]
            raise RuleFileError(
                f"{_display(rule_file)}: field 'version': {new.version!r} is already the label of "
                f"the version adopted from {effective} ({_display(path)}); a new version needs a "
                "version of its own (run reports and lookups name it)")
        archived = rules_dir / ADOPTED_FOLDER / new.scheme / f"{replaced.effective_from}.yaml"
        if archived.exists() and archived.read_bytes() != target.read_bytes():
            raise RuleFileError(f"{_display(archived)}: already holds another version with "
                                f"effective_from {replaced.effective_from}; nothing adopted")
        archived.parent.mkdir(parents=True, exist_ok=True)
        _write_replacing(archived, target.read_bytes())
    _write_replacing(target, data)
    return Adopted(scheme=load_scheme(target, catalogue), installed=target, archived=archived,
                   replaced=replaced)


def _write_replacing(path: Path, data: bytes) -> None:
    """Write `data` to `path` in one rename: a reader sees the old file or the new, never half."""
    temporary = path.with_name(f".{path.name}.adopting")
    temporary.write_bytes(data)
    os.replace(temporary, path)
