"""The lookups themselves — one code path for `citycredit serve` (HTTP) and `citycredit lookup`
(operators): check the request, decide, and say what the audit log records (issue "Lookups").

Three kinds, each for one scheme, each with a JSON body `{"id_number": …, "purpose": …}`:

  score        → {scheme, score_month, score, grade, grade_label} of the latest published month
  report       → the person's own report (purpose `self`): the score plus its explanation
  recognition  → body also {"as": <other scheme>}: the grade and its recognised equivalent (互认)

Checks, in this order, each with its status and the outcome the audit log records:

  401  no_key / bad_key            no or unknown API key (HTTP only)
  422  malformed_body / malformed_id / unknown_recognition
  403  scheme_not_allowed / purpose_not_allowed / report_not_self
  503  not_published                nothing is published in the warehouse yet (no month run)
  403  no_consent / consent_expired / consent_revoked / consent_not_yet_valid   (consents.py)
  404  not_found                   the person has no published score (not an adult, opted out)
  200  granted

A refusal says why without echoing what was sent: identity numbers travel only in bodies and
appear in no answer, log line or audit entry (the entry holds the subject_key).
"""
from __future__ import annotations

import getpass
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..config import Settings, load_grantees
from ..identity import is_valid_id_number, subject_key
from ..rules import available_recognitions, load_catalogue, load_recognition, load_schemes
from . import consents as consent_rules
from .audit import Entry, now
from .authorise import Grantee, Grantees
from .index import ServingIndex
from .store import index_url

KINDS = ("score", "report", "recognition")
MAX_BODY = 4096      # bytes; a lookup body is under 100
SELF = "self"
_WORD = re.compile(r"[a-z][a-z0-9_]{0,31}")
_BODY_KEYS = {"score": {"id_number", "purpose"}, "report": {"id_number", "purpose"},
              "recognition": {"id_number", "purpose", "as"}}


def _plain_name(key: str) -> bool:
    """Whether a body's unknown key may be named back: a plain field name (letters and _, at
    most 2 digits, up to 32 characters). Anything else may be a value sent as a key — an
    identity number, a name — and no answer quotes what was sent."""
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,31}", key)) \
        and sum(c.isdigit() for c in key) <= 2


class LookupSetupError(RuntimeError):
    """The lookup configuration is inconsistent (a grantee names an unknown scheme, a
    recognition table is broken); the service does not start."""


@dataclass(frozen=True)
class Answer:
    """What to answer (status, JSON body) and what the audit log records first."""

    status: int
    body: dict
    entry: Entry


def _word(value: Any) -> str | None:
    """A value fit for the audit log and messages: a lowercase word, else None (so that no
    stray identity number sent in the wrong field is ever recorded)."""
    return value if isinstance(value, str) and _WORD.fullmatch(value) else None


def _decimal_text(text: str | None) -> str | None:
    if text is None:
        return None
    value = Decimal(text)
    return format(value.normalize() if value != 0 else Decimal(0), "f")


class Lookups:
    """Answers lookups from the serving index. Built once (checks the grantees against the
    adopted schemes and every recognition table: LookupSetupError)."""

    def __init__(self, settings: Settings, index: ServingIndex | None = None):
        from ..key_record import check_subject_key

        check_subject_key(settings)   # another key than the warehouse's would find no one
        self.settings = settings
        self.key = settings.subject_key
        self.timezone = settings.lookup["timezone"]
        self.schemes = load_schemes(settings.rules)
        self.catalogue = load_catalogue(settings.rules)
        self.grantees = Grantees(load_grantees(settings.conf_dir))
        unknown = self.grantees.unknown_schemes(self.schemes)
        if unknown:
            raise LookupSetupError("; ".join(
                f"{settings.conf_dir / 'grantees.yaml'}: grantee '{g}': scheme(s) "
                f"{', '.join(s)} not adopted (rules/: {', '.join(self.schemes)})"
                for g, s in unknown.items()))
        self.recognitions = {pair: load_recognition(path, self.schemes)
                             for pair, path in available_recognitions(settings.rules).items()}
        self.index = index or ServingIndex(index_url(settings))

    # -----------------------------------------------------------------------------------------
    def refuse_unauthenticated(self, kind: str, scheme: str, outcome: str,
                               channel: str = "http") -> Answer:
        message = ("missing API key: send 'Authorization: Bearer <key>'" if outcome == "no_key"
                   else "unknown API key")
        return self.make_answer(401, {"detail": message}, channel, None, None,
                                scheme if scheme in self.schemes else None, kind, None, outcome)

    def answer(self, kind: str, grantee: Grantee, scheme: str, body: bytes | dict,
               channel: str = "http") -> Answer:
        """Decide one lookup of an authenticated grantee (see the module's check order)."""
        scheme_name = scheme if scheme in self.schemes else None

        def reply(status, payload, outcome, purpose=None, key=None):
            return self.make_answer(status, payload, channel, grantee.id, purpose, scheme_name,
                                    kind, key, outcome)

        request = self._parse(kind, body)
        if isinstance(request, str):
            return reply(422, {"detail": request}, "malformed_body")
        purpose = _word(request.get("purpose"))
        id_number = request["id_number"]
        if not is_valid_id_number(id_number):
            return reply(422, {"detail": "id_number is not a valid 18-character resident identity "
                                         "number (GB 11643)"}, "malformed_id", purpose)
        key = subject_key(id_number, self.key)
        if scheme_name is None or scheme_name not in grantee.schemes:
            return reply(403, {"detail": f"grantee {grantee.id} may not look up this scheme "
                                         f"(allowed: {', '.join(sorted(grantee.schemes))})"},
                         "scheme_not_allowed", purpose, key)
        if purpose is None or purpose not in grantee.purposes:
            return reply(403, {"detail": f"grantee {grantee.id} may not look up for this purpose "
                                         f"(allowed: {', '.join(sorted(grantee.purposes))})"},
                         "purpose_not_allowed", purpose, key)
        if kind == "report" and purpose != SELF:
            return reply(403, {"detail": "a report is the person's own: purpose must be 'self'"},
                         "report_not_self", purpose, key)
        target = None
        if kind == "recognition":
            target = _word(request.get("as"))
            if (scheme_name, target) not in self.recognitions:
                known = sorted(t for s, t in self.recognitions if s == scheme_name)
                return reply(422, {"detail": f"no recognition table from {scheme_name} to the "
                                             f"scheme named in 'as' (tables from {scheme_name}: "
                                             f"{', '.join(known) or 'none'})"},
                             "unknown_recognition", purpose, key)
        with self.index.reader() as reader:
            if not reader.generation.months:         # no month published: no one to look up
                return reply(503, {"detail": "no scores are published yet: a month's run "
                                             "(`citycredit run`) publishes them"},
                             "not_published", purpose, key)
            state = consent_rules.consent_state(reader.consents(key, grantee.id, purpose),
                                                consent_rules.today(self.timezone))
            if state != consent_rules.VALID:
                return reply(403, {"detail": f"no valid consent of this person for grantee "
                                             f"{grantee.id} and purpose {purpose} "
                                             f"({state.replace('_', ' ')})"}, state, purpose, key)
            row = reader.score(scheme_name, key)
            if row is None:
                return reply(404, {"detail": f"no published {scheme_name} score for this person"},
                             "not_found", purpose, key)
            published = {"scheme": scheme_name, "score_month": row["score_month"],
                         "score": row["score"], "grade": row["grade"],
                         "grade_label": row["grade_label"]}
            if kind == "report":
                published.update(self._explanation(scheme_name, reader.lines(scheme_name, key),
                                                   row["score"]))
        if kind == "recognition":
            mapped = self.recognitions[(scheme_name, target)].grades[row["grade"]]
            label = next(g.label for g in self.schemes[target].grades if g.grade == mapped)
            published = {"scheme": scheme_name, "score_month": row["score_month"],
                         "grade": row["grade"], "grade_label": row["grade_label"],
                         "as": {"scheme": target, "grade": mapped, "grade_label": label}}
        return reply(200, published, "granted", purpose, key)

    def lookup_as_operator(self, kind: str, grantee_id: str, scheme: str, body: dict) -> Answer:
        """`citycredit lookup`: the same checks for a named grantee (an operator of the centre
        acting for it, who holds no API key); recorded with channel `cli:<user>`."""
        grantee = self.grantees.get(grantee_id)
        channel = f"cli:{_word(getpass.getuser()) or 'operator'}"
        if grantee is None:
            return self.make_answer(401, {"detail": f"no grantee {grantee_id!r} in grantees.yaml"},
                                    channel, None, _word(body.get("purpose")),
                                    scheme if scheme in self.schemes else None, kind, None,
                                    "bad_key")
        return self.answer(kind, grantee, scheme, body, channel)

    # -----------------------------------------------------------------------------------------
    @staticmethod
    def _parse(kind: str, body: bytes | dict) -> dict | str:
        """The request body as a dict, or the 422 message (which never quotes the body)."""
        allowed = _BODY_KEYS[kind]
        shape = "{" + ", ".join(f'"{k}": …' for k in sorted(allowed, key=["id_number", "purpose",
                                                                         "as"].index)) + "}"
        if isinstance(body, (bytes, bytearray, str)):
            if len(body) > MAX_BODY:
                return f"the body is larger than {MAX_BODY} bytes: {shape}"
            try:
                body = json.loads(body or b"null")
            except (ValueError, UnicodeDecodeError):
                return f"the body must be JSON: {shape}"
        if not isinstance(body, dict):
            return f"the body must be a JSON object: {shape}"
        if set(body) != allowed:
            missing = sorted(allowed - set(body))
            unknown = sorted(set(body) - allowed)
            named = [json.dumps(k) for k in unknown if _plain_name(k)]
            said = ([f"missing field(s) {', '.join(missing)}"] if missing else []) \
                + ([f"unknown field(s) {', '.join(named)}"] if named else []) \
                + ([f"{len(unknown) - len(named)} unknown field(s) not named here (not a plain "
                    "field name)"] if len(unknown) > len(named) else [])
            return f"{'; '.join(said)} in the body: {shape}"
        if not all(isinstance(body[k], str) for k in allowed):
            return f"every field is a string: {shape}"
        return body

    def _explanation(self, scheme: str, lines: list[dict], score: int) -> dict:
        """The report part of a person's own lookup: counted findings with their points and last
        counting day, the deduplicated, expired and masked ones, the tier, cap, growth and
        subject-rule adjustments, `raw_score` (base_score + every point listed: the score before
        the scheme's bounds and rounding, SPEC §4 step 7), `bounded_by` ("min_score" or
        "max_score" when `score` is that bound because raw_score is beyond it, else null), and
        `next_change_after`: the earliest last_valid_day among counted findings — if nothing
        new arrives, the score changes after that day."""
        groups: dict[str, list] = {"counted": [], "deduplicated": [], "expired": [], "masked": [],
                                   "adjustments": []}
        for line in lines:
            if line["line_type"] != "finding":
                groups["adjustments"].append({
                    "type": line["line_type"], "rule_id": line["rule_id"],
                    "dimension": line["dimension"], "quantity": _decimal_text(line["quantity"]),
                    "points": _decimal_text(line["points"])})
                continue
            item = self.catalogue.items.get(line["item_code"])
            entry = {
                "source_id": line["source_id"], "record_id": line["record_id"],
                "item_code": line["item_code"], "item": item.title if item else None,
                "level": line["level"], "quantity": _decimal_text(line["quantity"]),
                "occurred_on": line["occurred_on"].isoformat() if line["occurred_on"] else None,
                "rule_id": line["rule_id"], "dimension": line["dimension"],
                "points": _decimal_text(line["points"] if line["status"] == "counted"
                                        else line["finding_points"]),
                "last_valid_day": (line["last_valid_day"].isoformat()
                                   if line["last_valid_day"] else None)}
            if line["status"] == "deduplicated":
                entry["deduplicated_by"] = line["deduplicated_by"]
            groups[line["status"]].append(entry)
        days = [e["last_valid_day"] for e in groups["counted"] if e["last_valid_day"]]
        rules = self.schemes[scheme]
        # only counted findings and adjustments carry points (every other line carries 0)
        raw = Decimal(rules.base_score) + sum((Decimal(line["points"]) for line in lines
                                               if line["points"] is not None), Decimal(0))
        bounded_by = ("min_score" if rules.min_score is not None and raw < rules.min_score
                      and score == rules.min_score else
                      "max_score" if rules.max_score is not None and raw > rules.max_score
                      and score == rules.max_score else None)
        return {"base_score": _decimal_text(str(rules.base_score)), **groups,
                "raw_score": _decimal_text(str(raw)), "bounded_by": bounded_by,
                "next_change_after": min(days) if days else None}

    @staticmethod
    def make_answer(status, body, channel, grantee, purpose, scheme, kind, key, outcome) -> Answer:
        """An answer and the audit entry that records it (stamped now)."""
        return Answer(status, body, Entry(at=now(), channel=channel, grantee=grantee,
                                          purpose=purpose, scheme=scheme, kind=kind,
                                          subject_key=key, outcome=outcome, status=status))
