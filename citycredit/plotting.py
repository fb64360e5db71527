"""matplotlib set up once for every plot citycredit draws (the policy reports, the analyst
notebooks): the Agg backend and a font that carries Chinese glyphs first, so that 海贝分 and the
grade labels are not drawn as boxes.

A CJK font is a system package (Debian: `apt-get install fonts-noto-cjk`; `make cjk-font`, which
`make demo`, `make test` and `make notebooks` run). Without one, plots are still drawn, with a
CJKFontMissing warning.
"""
from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

#: font families that carry Chinese glyphs, in order of preference (the fallback list)
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Serif CJK SC", "Source Han Sans SC",
             "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei",
             "PingFang SC", "Heiti SC", "AR PL UMing CN")

#: parts of font file names that carry Chinese glyphs (for fonts matplotlib has not cached yet)
CJK_FILE_HINTS = ("notosanscjk", "notoserifcjk", "wqy", "sourcehansans", "simhei", "msyh",
                  "pingfang", "uming")


class CJKFontMissing(UserWarning):
    """No CJK font: Chinese labels in the plots show as boxes."""


@lru_cache(maxsize=2)
def cjk_font(backend: str | None = "Agg") -> str | None:
    """Configure matplotlib — the backend (Agg for files; None keeps the one in use, e.g. a
    notebook's inline backend), a CJK font first and the other installed CJK_FONTS after it as
    fallbacks — and return the font's name, or None with a CJKFontMissing warning."""
    import matplotlib

    if backend and "inline" not in matplotlib.get_backend():   # a notebook keeps its figures
        matplotlib.use(backend)
    from matplotlib import font_manager, rcParams

    installed = {f.name for f in font_manager.fontManager.ttflist}
    found = [f for f in CJK_FONTS if f in installed]
    if not found:     # installed after matplotlib cached its font list: add the files now
        for path in font_manager.findSystemFonts():
            if any(part in Path(path).name.lower() for part in CJK_FILE_HINTS):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        installed = {f.name for f in font_manager.fontManager.ttflist}
        found = [f for f in CJK_FONTS if f in installed]
    if not found:
        warnings.warn("no CJK font installed: Chinese labels in plots will show as boxes "
                      "(Debian/Ubuntu: apt-get install fonts-noto-cjk)", CJKFontMissing)
        return None
    rcParams["font.sans-serif"] = [*found, *[f for f in rcParams["font.sans-serif"]
                                             if f not in found]]
    rcParams["font.family"] = "sans-serif"
    rcParams["axes.unicode_minus"] = False      # CJK fonts often lack U+2212
    return found[0]
