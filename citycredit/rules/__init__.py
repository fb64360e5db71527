"""Rule files: the item catalogue and the scheme files of SPEC §3–§4, loaded and checked.

    catalogue = load_catalogue(Path("rules"))
    scheme = load_scheme(Path("rules/haibei.yaml"), catalogue)
    schemes = load_schemes(Path("rules"), ["haibei", "huzhou"])

Everything here is plain data (frozen dataclasses, ``Decimal`` numbers) and picklable, so a
scheme can be shipped to Spark executors as it is. This module only *reads* rules; applying them
to findings is citycredit/scoring (and, independently, reference/duckdb_scorer.py).

A rules folder holds the adopted schemes (`<scheme>.yaml` beside `catalogue.yaml`: the monthly
run scores every one), candidate revisions in `drafts/` (`<scheme>-<anything>.yaml`, loaded and
checked like adopted files, never scored by the monthly run) and grade recognition tables in
`recognition/` (`<from>__<to>.yaml`: every grade of one scheme → a grade of the other).
Earlier adopted versions of a scheme are kept in `adopted/<scheme>/<effective_from>.yaml`; the
month's run scores the version in force for the month (citycredit/rules/adopted.py).

Numbers: every number of a rule file becomes a ``Decimal`` built from the text written in the
file (the YAML reader is taught to do so), never through a binary float: ``0.4`` is exactly
``Decimal('0.4')`` and ``2026.10`` stays ``2026.10``. Integers written with a leading zero
(``010``, which YAML 1.1 reads as octal 8), hexadecimal or sexagesimal forms are not accepted
as numbers.

``version`` should be quoted (``version: "2026.10"``). Unquoted numeric versions are accepted
and kept exactly as written (``version: 2026.10`` → ``"2026.10"``, not ``"2026.1"``), because
this loader reads decimal text itself; other YAML readers would not, so quote it.

Format v2 (SPEC §4.1, docs/rule-format.md) adds `subject_rules` (points per person by
residency, district, age, months_resident, optionally `unless_any` recent findings), and on a
finding rule `requires` (counts only against an earlier finding of the same case), `repair`
(repair energy from listed items ends a finding early) and `growth` (points per full k months
since the earliest finding, reset by listed rules). A v1 file loads exactly as before.

Every refusal is a :class:`RuleFileError` whose message names the file, the rule (or grade,
dimension, item) at fault, the field, and the line, e.g.::

    rules/haibei.yaml: rule 'fine-general': field 'dimension': unknown dimension 'lawx'
    (known: law, award, public) (line 14)

The package: model.py (the data classes), reading.py (the YAML reader, RuleFileError and the
field checks that word refusals), v1.py (catalogue and scheme files), v2.py (the format v2
additions), folders.py (a rules folder: adopted schemes, drafts, recognition tables),
adopted.py (every adopted version kept: the version in force for a month; adopting a new
one). Import from ``citycredit.rules``, not from the modules: they are arranged for their
readers.
"""

from __future__ import annotations

from .adopted import (ADOPTED_FOLDER, Adopted, adopt, adopted_versions, scheme_in_force,
                      schemes_in_force)
from .folders import (DRAFTS_FOLDER, RECOGNITION_FOLDER, available_drafts, available_recognitions,
                      available_schemes, load_draft, load_recognition, load_schemes)
from .model import (RESIDENCIES, SUBJECT_ATTRIBUTES, Catalogue, Condition, Dimension, Grade,
                    Growth, Item, Recognition, Repair, Requirement, Rule, Scheme, SubjectRule,
                    Tier, Unless)
from .reading import RuleFileError, UnknownSchemeError
from .v1 import CATALOGUE_FILE, load_catalogue, load_scheme

__all__ = [
    "RuleFileError",
    "UnknownSchemeError",
    "Item",
    "Catalogue",
    "Tier",
    "Rule",
    "Requirement",
    "Repair",
    "Growth",
    "Condition",
    "Unless",
    "SubjectRule",
    "SUBJECT_ATTRIBUTES",
    "RESIDENCIES",
    "Dimension",
    "Grade",
    "Scheme",
    "CATALOGUE_FILE",
    "load_catalogue",
    "load_scheme",
    "load_schemes",
    "available_schemes",
    "DRAFTS_FOLDER",
    "RECOGNITION_FOLDER",
    "available_drafts",
    "load_draft",
    "Recognition",
    "available_recognitions",
    "load_recognition",
    "ADOPTED_FOLDER",
    "Adopted",
    "adopt",
    "adopted_versions",
    "scheme_in_force",
    "schemes_in_force",
]
