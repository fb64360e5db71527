"""A department's check of its delivery before it sends it (issue 23; docs/departments.md).

`check_delivery(source_id, files, settings)` runs what landing runs on a delivery — the same
reading (encodings, file shapes, columns, typed values, identity numbers; ingest.read), the
same GX suites and verdict (ingest.validate.DeliveryChecks) and the manifest's row count — and
writes nothing: the files are read where they are (linked into a temporary delivery folder),
nothing reaches the warehouse. What landing does besides, and this check does not: it drops
the rows of persons who opted out (SPEC §7: who did is not the department's to know) and
compares the volume with the source's earlier months in bronze.

The outcome is one of
  `land`        every row would land                                         exit 0 (EXIT_CLEAN)
  `quarantine`  the delivery would land, these rows would be quarantined     exit 1 (EXIT_QUARANTINE)
  `stop`        the delivery would be refused as a whole (a file that cannot exit 3 (EXIT_STOP)
                be landed, the manifest, or the batch verdict: too many bad rows)
and `DeliveryVerdict.report()` says it in Chinese and English: per reason code the count and
the first rows (file, line, the column and what is wrong with the value). Identity numbers
are masked (`371002********123X`), names are never shown (the details of ingest.details carry
no personal data; anything number-like is masked again on the way out).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..identity import mask_id_numbers_in
from ..months import is_month, month_before, month_of
from .delivery import MANIFEST_FILE, READY_FILE, DeliveryError, find_delivery
from .read import CHUNK_ROWS, iter_delivery

__all__ = ["EXIT_CLEAN", "EXIT_QUARANTINE", "EXIT_STOP", "DeliveryVerdict", "check_delivery",
           "delivery_month"]

EXIT_CLEAN, EXIT_QUARANTINE, EXIT_STOP = 0, 1, 3

#: rows shown per reason code in the report
EXAMPLES = 5

#: each reason code in the words of the report (Chinese, English)
REASON_WORDS = {
    "bad_id_number": ("身份证号码无效", "identity number not valid"),
    "missing_required": ("必填项为空", "a required value is missing"),
    "unknown_item": ("信用信息目录中没有该事项", "item not in the catalogue"),
    "item_not_allowed": ("本部门未获授权报送该事项", "item not authorised for this department"),
    "unknown_level": ("等级不属于该事项", "level is not one of the item's levels"),
    "bad_date": ("日期格式错误", "not a date in the declared format"),
    "date_after_month": ("日期晚于报送月份", "date after the delivery month"),
    "negative_quantity": ("数量为负数", "negative quantity"),
    "bad_quantity": ("数量不是有效的小数", "quantity is not a decimal"),
    "bad_status": ("状态值无效", "status is not a known value"),
    "duplicate_record_id": ("记录编号重复", "record_id repeated"),
    "forbidden_field": ("含禁止采集的字段", "a forbidden field"),
    "unknown_column": ("字段不在数据规范中", "a field outside the contract"),
    "encoding": ("字符编码错误", "bytes not in the declared encoding"),
    "unparseable_row": ("无法读取的行（字段个数或引号错误）", "row cannot be read (fields or quotes)"),
    "control_character": ("值中含控制字符", "a control character inside a value"),
    "bad_district": ("行政区划代码无效", "district code not valid"),
    "bad_residency": ("户籍类型无效", "residency not valid"),
    "duplicate_id_number": ("身份证号码重复", "identity number repeated"),
    "duplicate_appeal_id": ("异议编号重复", "appeal_id repeated"),
    "unknown_source": ("来源部门未知", "unknown source"),
    "bad_outcome": ("异议结果无效", "outcome not valid"),
    "unknown_grantee": ("被授权机构未知", "unknown grantee"),
    "bad_purpose": ("查询用途无效", "purpose not valid"),
    "bad_date_order": ("日期先后顺序错误", "dates in the wrong order"),
    "duplicate_consent_id": ("授权编号重复", "consent_id repeated"),
}


@dataclass
class ReasonRows:
    """The rows of one reason code: how many, and the first ones (file, line, detail)."""

    code: str
    rows: int
    examples: list[tuple[str, int, str]] = field(default_factory=list)


@dataclass
class DeliveryVerdict:
    """What landing would do with a delivery (check_delivery)."""

    source_id: str
    month: str
    files: list[str]
    outcome: str                   # land | quarantine | stop
    stop: str | None = None        # why it would stop (the landing message)
    landed: int = 0                # rows read
    accepted: int = 0
    quarantined: int = 0
    reasons: list[ReasonRows] = field(default_factory=list)
    padding: dict = field(default_factory=dict)   # rows whose control padding is removed
    #: what gave the month: '--month', 'folder', 'file names' or 'assumed' (last month)
    month_from: str = "--month"

    @property
    def exit_status(self) -> int:
        return {"land": EXIT_CLEAN, "quarantine": EXIT_QUARANTINE}.get(self.outcome, EXIT_STOP)

    @property
    def by_reason(self) -> dict[str, int]:
        return {r.code: r.rows for r in self.reasons}

    def as_dict(self) -> dict:
        out = asdict(self)
        out["exit_status"] = self.exit_status
        return out

    def to_json(self) -> str:
        """as_dict as JSON text, anything number-like masked."""
        return mask_id_numbers_in(json.dumps(self.as_dict(), ensure_ascii=False, indent=1))

    def report(self) -> str:
        """The verdict and what to repair, in Chinese and English, without personal data."""
        month = {"assumed": f"{self.month} (月份按上月推定 / month assumed: last month; "
                            "give --month YYYY-MM)",
                 "file names": f"{self.month} (月份取自文件名 / month from the file names)"
                 }.get(self.month_from, self.month)
        lines = [f"citycredit check-delivery: {self.source_id} {month} — "
                 f"{', '.join(self.files) or '(no data file)'}"]
        if self.outcome == "stop":
            lines.append("结论 Verdict: 不能入库，整批将被退回 / would STOP: the delivery would "
                         "be refused as a whole")
            lines.append(f"原因 Why: {mask_id_numbers_in(self.stop or '')}")
        elif self.outcome == "quarantine":
            lines.append(f"结论 Verdict: 可以入库，但有 {self.quarantined} 行将被隔离 / would "
                         f"land; {self.quarantined} row(s) would be quarantined")
        else:
            lines.append("结论 Verdict: 可以完整入库 / would land cleanly")
        if self.landed or self.outcome != "stop":
            lines.append(f"读取 {self.landed} 行，可入库 {self.accepted} 行，隔离 "
                         f"{self.quarantined} 行 / rows read {self.landed}, would be accepted "
                         f"{self.accepted}, would be quarantined {self.quarantined}")
        for r in self.reasons:
            zh, en = REASON_WORDS.get(r.code, (r.code, r.code))
            lines.append("")
            lines.append(f"[{r.code}] {zh} / {en}: {r.rows} 行 row(s)")
            for file, line, detail in r.examples:
                lines.append(f"  {file} 第 {line} 行 line {line}: {mask_id_numbers_in(detail)}")
            if r.rows > len(r.examples):
                lines.append(f"  …… 另有 {r.rows - len(r.examples)} 行 / {r.rows - len(r.examples)} "
                             "more")
        if self.padding.get("rows"):
            file, line, note = self.padding["example"]
            lines.append("")
            lines.append(f"注意 Note: {self.padding['rows']} 行的值末尾有控制字符（如 NUL 填充），"
                         f"入库时将被去除 / {self.padding['rows']} row(s) end a value with control "
                         f"characters (padding such as NUL); landing removes them — e.g. {file} "
                         f"line {line}: {mask_id_numbers_in(note)}")
        lines.append("")
        lines.append("行号：csv 为表头之后的数据行（第 1 行即表头下一行），jsonl 为文件行，parquet 为"
                     "行序号 / line: csv counts data lines after the header, jsonl file lines, "
                     "parquet rows")
        return "\n".join(lines)


def delivery_month(files, today: dt.date | None = None) -> str:
    """The month a delivery is for: the name of the folder that holds the files when it is a
    month (`<landing>/<source>/<YYYY-MM>/`), else the one month every file's name carries
    (`court_2026-10_01.csv`, docs/departments.md), else the month before today's (a month is
    delivered after it ends)."""
    return delivery_month_and_source(files, today)[0]


def delivery_month_and_source(files, today: dt.date | None = None) -> tuple[str, str]:
    """(delivery_month, what gave it: 'folder', 'file names' or 'assumed')."""
    return month_named_by(files) or (month_before(month_of(today or dt.date.today())), "assumed")


def month_named_by(files) -> tuple[str, str] | None:
    """(month, what gave it: 'folder' or 'file names') as delivery_month finds it, or None
    when neither the files' folder nor their names give one."""
    parents = {Path(f).resolve().parent.name if Path(f).is_file() else Path(f).resolve().name
               for f in files}
    if len(parents) == 1 and is_month(next(iter(parents))):
        return next(iter(parents)), "folder"
    names = [p.name for f in map(Path, files)
             for p in (sorted(f.iterdir()) if f.is_dir() else [f])
             if p.is_file() and p.suffix.lower() in (".csv", ".jsonl", ".parquet")]
    named = {m for name in names for m in _MONTH_IN_NAME.findall(name)}
    if names and len(named) == 1 and all(_MONTH_IN_NAME.search(n) for n in names):
        return named.pop(), "file names"
    return None


#: a month in a file name: 2026-10 (not part of a longer number or a date's day)
_MONTH_IN_NAME = re.compile(r"(?<![0-9])([0-9]{4}-(?:0[1-9]|1[0-2]))(?![0-9]|-[0-9])")


def _stage(folder: Path, files) -> None:
    """Link the files (or a delivery folder's entries) into `folder`, a delivery folder, with
    `_READY`; raises ValueError for a missing file or two files of one name."""
    folder.mkdir(parents=True)
    seen = set()
    paths = []
    for f in map(Path, files):
        if f.is_dir():
            paths.extend(p for p in sorted(f.iterdir())
                         if p.name != READY_FILE and not p.name.startswith("."))
        elif f.is_file():
            paths.append(f)
        else:
            raise ValueError(f"{f}: no such file")
    for p in paths:
        if p.name in seen:
            raise ValueError(f"two files named {p.name}: a delivery's files have distinct names")
        seen.add(p.name)
        os.symlink(p.resolve(), folder / p.name)
    (folder / READY_FILE).touch()


def check_delivery(source_id: str, files, settings=None, *, month: str | None = None,
                   chunk_rows: int = CHUNK_ROWS) -> DeliveryVerdict:
    """What landing would do with `files` (data files, a `manifest.json`, or a delivery
    folder) as `source_id`'s delivery for `month` (default: delivery_month); nothing written.

    `settings`: a config.Settings (default: the configuration in force). Raises ValueError for
    an unknown source or a missing file, rules/suite errors as landing does (config, SuiteError).
    """
    from ..config import load_settings
    from ..rules import load_catalogue
    from .validate import DeliveryChecks

    settings = settings or load_settings()
    if source_id not in settings.sources:
        raise ValueError(f"unknown source {source_id!r} (conf/sources.yaml has "
                         f"{', '.join(sorted(settings.sources))})")
    conf = settings.sources[source_id]
    month, month_from = (month, "--month") if month else delivery_month_and_source(files)
    catalogue = load_catalogue(settings.rules)
    items = {code: (set(item.levels) if item.levels else None)
             for code, item in catalogue.items.items()}
    with tempfile.TemporaryDirectory(prefix="citycredit-check-") as tmp:
        _stage(Path(tmp) / source_id / month, files)
        names = sorted(p.name for p in (Path(tmp) / source_id / month).iterdir()
                       if p.name not in (READY_FILE, MANIFEST_FILE))
        verdict = DeliveryVerdict(source_id, month, names, "land", month_from=month_from)
        try:
            delivery = find_delivery(Path(tmp), source_id, month)
            checks = DeliveryChecks(source_id, conf, month, items,
                                    {**settings.validation, "sources": settings.sources,
                                     "expectations_dir": settings.expectations},
                                    kind=conf["kind"])

            def chunks():
                return iter_delivery(delivery, conf, chunk_rows=chunk_rows,
                                     forbidden_columns=settings.validation["forbidden_columns"]
                                     ).chunks()

            for raw in chunks():            # pass 1, as landing's
                checks.add(raw.data)
            checks.run_row_checks()
            examples: dict[str, list] = {}
            for raw in chunks():            # pass 2: the same chunks again
                quarantined, _ = checks.split(raw.data)
                for file, line, reasons, detail in zip(quarantined["file"], quarantined["line"],
                                                       quarantined["reasons"],
                                                       quarantined["detail"]):
                    for code in reasons.split(";"):
                        shown = examples.setdefault(code, [])
                        if len(shown) < EXAMPLES:
                            shown.append((file, int(line), detail or code))
            result = checks.finish()
        except DeliveryError as exc:
            verdict.outcome, verdict.stop = "stop", str(exc)
            return verdict
    counts = result.counts
    verdict.landed, verdict.accepted = counts["landed"], counts["accepted"]
    verdict.quarantined = counts["quarantined"]
    verdict.reasons = [ReasonRows(code, rows, examples.get(code, []))
                       for code, rows in sorted(counts["by_reason"].items(),
                                                key=lambda kv: (-kv[1], kv[0]))]
    verdict.padding = result.padding
    problems = list(result.batch_errors)
    if not result.gx_success and not problems:
        problems.append("the Great Expectations suite failed at batch level")
    if problems:
        verdict.outcome = "stop"
        verdict.stop = (f"{source_id} {month}: delivery rejected, nothing reaches silver: "
                        + "; ".join(problems))
    elif verdict.quarantined:
        verdict.outcome = "quarantine"
    return verdict

