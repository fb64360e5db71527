"""Birth date and sex of a whole population column at once (identity.birth_dates_and_sexes)
give what the per-number functions give, and refuse what is not a valid number."""
from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest

from citycredit.identity import birth_date, birth_dates_and_sexes, check_char, sex


def numbers(n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        body = (f"{rng.choice(['371002', '110105', '440305'])}{rng.randint(1930, 2008)}"
                f"{rng.randint(1, 12):02d}"
                f"{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}")
        number = body + check_char(body)
        out.append(f" {number.lower()}\u200b" if i % 5 == 0 else number)   # normal form counts
    return out


def test_same_as_per_number_functions():
    values = numbers(2000) + [b + check_char(b) for b in ("11010519491231002", "11010520000229001")]
    births, sexes = birth_dates_and_sexes(pd.Series(values))
    assert births.to_pylist() == [birth_date(v) for v in values]
    assert sexes.to_pylist() == [sex(v) for v in values]
    assert births.to_pylist()[-1] == dt.date(2000, 2, 29) and sexes.to_pylist()[-1] == "M"   # leap day
    assert any(v.strip().upper().endswith("X") for v in values)          # check character X too


@pytest.mark.parametrize("bad", ["37100219991301123X", "3710021999010112", None, "３７１００２"])
def test_refuses_an_invalid_number_without_naming_it(bad):
    with pytest.raises(ValueError) as raised:
        birth_dates_and_sexes(pd.Series(numbers(3) + [bad]))
    assert "not valid" in str(raised.value) and (bad is None or bad not in str(raised.value))
