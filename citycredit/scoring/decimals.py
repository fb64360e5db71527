"""The exact decimal types of scoring (ARCHITECTURE decision 5): never floating point.

Rule constants have at most 4 decimals (checked by the rules frame); quantities are
decimal(18,4) (the extract contract), so every product quantity × points_per_unit is exact in
decimal(28,8). The gold schemas in citycredit.catalog use the same precisions.
"""
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

RULE_VALUE = T.DecimalType(18, 4)
POINTS = T.DecimalType(28, 8)
QUANTITY = T.DecimalType(18, 4)


def bounded(value: Column, cap: Column) -> Column:
    """Clamp to [-cap, cap] when cap is set (every cap of SPEC §4 is an absolute bound)."""
    return F.when(cap.isNull(), value).otherwise(F.greatest(F.least(value, cap), -cap))
