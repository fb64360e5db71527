"""The exact decimal types of scoring (ARCHITECTURE decision 5): never floating point.

Rule constants have at most 4 decimals (checked by the rules frame); quantities are
decimal(18,4) (the extract contract), so every product quantity × points_per_unit has at most 8
decimals: points are decimal(18,8) — |points| < 10^10, the bound every sum of them (as_units)
always had, and a larger product is an ANSI cast error, never a rounding. 18 digits keep a value
in one long in Spark's rows and in Parquet (INT64); decimal(28,8) made every value a BigDecimal
and a 12-byte array in the gold files (−18 s of the full-scale job, docs/performance.md). The
gold schemas in citycredit.catalog use the same precisions.

Sums run on longs (exact_sum): Spark keeps a decimal sum in a plain long only when the
precision is at most 8 (its rule DecimalAggregates); above that every value is a BigDecimal,
measurably slower over millions of rows. A value with at most `scale` decimals times 10^scale is
an integer, so summing those integers as longs and scaling back is exact — and an overflow is an
error (ANSI mode, Spark 4's default), never a wrong sum.

A total that leaves its type (a subject's points of one rule or one dimension beyond
decimal(18,8), a score beyond int) stops the job with a message saying which (cast_or_stop:
raise_error in the projection that casts the total anyway, so no extra pass);
scoring.job.MonthScan turns it into PointsOutOfRange naming the month, instead of Spark's hint
to switch ANSI mode off.
"""
from decimal import Decimal

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..rules import Scheme
from ..rules.reading import MAX_POINTS, _display

RULE_VALUE = T.DecimalType(18, 4)
POINTS = T.DecimalType(18, 8)
QUANTITY = T.DecimalType(18, 4)


def bounded(value: Column, cap: Column) -> Column:
    """Clamp to [-cap, cap] when cap is set (every cap of SPEC §4 is an absolute bound)."""
    return F.when(cap.isNull(), value).otherwise(F.greatest(F.least(value, cap), -cap))


def cast_or_stop(value: Column, to: T.DataType, message: Column) -> Column:
    """`value` cast to `to` (POINTS, or int for a score); a value that does not fit stops the
    Spark job with `message` (naming the file and the rule or dimension — never a subject:
    out_of_range). try_cast costs what the cast did; the check is a null test per row."""
    fitted = value.try_cast(to)
    return F.when(fitted.isNull() & value.isNotNull(), F.raise_error(message)).otherwise(fitted)


#: the largest whole score gold holds (int)
MAX_SCORE = 2 ** 31 - 1


def out_of_range(scheme: Scheme, what: str, kind: str | None = None,
                 column: str | None = None, score: bool = False) -> Column:
    """The message of a total that leaves its type (cast_or_stop): the scheme's file,
    the rule or dimension (`kind`, named by the row's `column`), what was summed — never a
    subject. `score`: a whole score beyond int, not points beyond decimal(18,8)."""
    named = [F.lit(f"{kind} '"), F.col(column), F.lit("': ")] if column else []
    bound = (f"reaches {MAX_SCORE + 1:,} or more in magnitude, beyond a whole score (int): "
             "set min_score and max_score, or lower the points" if score else
             f"reach {MAX_POINTS:,} or more in magnitude, beyond the exact points scoring keeps "
             "(decimal(18,8)): lower the points")
    return F.concat(F.lit(f"{_display(scheme.path)}: "), *named, F.lit(f"{what} {bound}"))


def as_units(value: Column, scale: int = POINTS.scale) -> Column:
    """value × 10^scale as a bigint, exactly: `value` has at most `scale` decimals and
    |value| < 10^(18 − scale) (10^10 points, 10^14 units of quantity) — a larger one is a cast
    error, not a rounding. (decimal(18, scale) × decimal(scale + 1, 0) needs no rounding.)"""
    return (value.cast(T.DecimalType(18, scale))
            * F.lit(Decimal(10 ** scale)).cast(T.DecimalType(scale + 1, 0))).cast("long")


def from_units(units: Column, scale: int = POINTS.scale) -> Column:
    """A sum of as_units values (a long, or null) back as decimal(38, scale), exactly — as
    Spark's own sum of the decimals types it."""
    back = F.lit(Decimal(1).scaleb(-scale)).cast(T.DecimalType(scale + 1, scale))
    # decimal(20,0) × decimal(scale+1, scale) stays within 38 digits: no rounding
    return (units.cast(T.DecimalType(20, 0)) * back).cast(T.DecimalType(38, scale))


def exact_sum(value: Column, scale: int = POINTS.scale) -> Column:
    """Σ value as Spark's sum gives it (decimal(38, scale), null when every value is null),
    computed on longs (as_units). Several sums over one value (by condition) cost less as
    from_units(F.sum(…)) of a units column projected once: each as_units is a BigDecimal
    product per row (steps.subject_scores)."""
    return from_units(F.sum(as_units(value, scale)), scale)
