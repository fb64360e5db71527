"""Layers (issue 22 item 4): citycredit.ingest and citycredit.privacy do not import each other in a
circle. What both need lies below them — the suppression list (citycredit.suppression), spools
and their leftovers (citycredit.io.spool) — and the late-delivery rewrite is called from the
landing step above both (citycredit.landing). The one edge left between them points down:
privacy reads delivery files with ingest's reader (ingest.delivery, ingest.read), and nothing
of ingest imports privacy. Every import is read with `ast`, function-level ones included.
"""
from __future__ import annotations

import ast
from pathlib import Path

import citycredit

PACKAGE_ROOT = Path(citycredit.__file__).parent
#: what privacy may take from ingest: the delivery reader (erasure rewrites delivery files and
#: counts their rows as landing counts them)
PRIVACY_MAY_IMPORT_FROM_INGEST = {"citycredit.ingest.delivery", "citycredit.ingest.read"}
#: below both: they import neither
LOWER = ("citycredit.suppression", "citycredit.io.spool")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module `source` (the text of `module`) imports, anywhere in it (module level,
    functions, branches), as absolute names; `from x import y` gives x and x.y."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def imports_of(package: str) -> dict[str, set[str]]:
    """module name → the modules it imports, for every module of `package` (a dotted name)."""
    folder = PACKAGE_ROOT.parent.joinpath(*package.split("."))
    files = sorted(folder.rglob("*.py")) if folder.is_dir() else [folder.with_suffix(".py")]
    return {module_name(f): imported_modules(f.read_text(encoding="utf-8"), module_name(f),
                                             f.name == "__init__.py") for f in files}


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_reader_sees_function_level_and_relative_imports():
    source = ("from .delivery import Delivery\n"
              "def land():\n"
              "    if True:\n"
              "        from ..privacy.erasure import erase_late_delivery\n"
              "    import citycredit.privacy.scan\n"
              "    from .. import privacy\n")
    found = imported_modules(source, "citycredit.ingest.task")
    assert {"citycredit.ingest.delivery", "citycredit.privacy.erasure", "citycredit.privacy.scan",
            "citycredit.privacy"} <= found
    assert "citycredit.ingest" in imported_modules("from . import check", "citycredit.ingest",
                                                   is_package=True)


def test_no_module_of_ingest_imports_privacy():
    offending = {module: sorted(n for n in names if within(n, "citycredit.privacy"))
                 for module, names in imports_of("citycredit.ingest").items()}
    assert {m: n for m, n in offending.items() if n} == {}
    assert "citycredit.ingest.task" in offending        # the package was read


def test_privacy_takes_only_the_delivery_reader_from_ingest():
    offending = {module: sorted(n for n in names if within(n, "citycredit.ingest")
                                and not any(within(n, allowed)
                                            for allowed in PRIVACY_MAY_IMPORT_FROM_INGEST))
                 for module, names in imports_of("citycredit.privacy").items()}
    assert {m: n for m, n in offending.items() if n} == {}
    assert "citycredit.privacy.erasure" in offending


def test_what_both_need_lies_below_both():
    for lower in LOWER:
        names = imports_of(lower)[lower]
        assert not [n for n in names if within(n, "citycredit.ingest")
                    or within(n, "citycredit.privacy")], lower
    ingest, privacy = imports_of("citycredit.ingest"), imports_of("citycredit.privacy")
    assert "citycredit.suppression" in ingest["citycredit.ingest.task"]
    assert "citycredit.suppression" in privacy["citycredit.privacy.erasure"]
    assert "citycredit.io.spool" in ingest["citycredit.ingest.task"]
    assert "citycredit.io.spool" in privacy["citycredit.privacy.task"]


def test_the_late_delivery_rewrite_is_called_from_above_landing():
    step = imports_of("citycredit.landing")["citycredit.landing"]
    assert {"citycredit.ingest.task", "citycredit.privacy.erasure"} <= step
    pipeline = imports_of("citycredit.pipeline")["citycredit.pipeline"]
    assert "citycredit.landing.land_source" in pipeline
