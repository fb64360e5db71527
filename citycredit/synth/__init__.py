"""The synthetic city: `citycredit generate` writes a landing zone (SPEC §2, docs/contracts.md).

Volumes are set at the reference scale of 2,250,000 adults × 36 months and scale linearly with
adults and months. Modules, in the order a month is made:

* plan: the run (months, scale, seed, item codes) and its random streams;
* population: people, identity numbers, names, districts, exits, the population snapshots;
* sources, volumes: the departments of conf/sources.yaml and the streams of findings they
  deliver (reference volumes per source, item and level; credit services included);
* findings: new findings (delivery lag, quantities, validity, case references) and the
  provincial credit score of every adult;
* overlaps: debts performed, commitments breached, and findings delivered by two departments
  with the same case_ref;
* history: breaches, in the first months, of commitments signed before the run;
* repairs: completed credit repairs of listings and penalties (CREDIT_REPAIR_COMPLETED), and
  volunteering, blood and donations after breaches (repair energy, rule format v2);
* corrections: corrections and revocations re-sent 1-6 months after delivery;
* appeals: appeals against negative findings, opt-out requests;
* consents: persons authorising grantees (conf/grantees.yaml) to look their score up;
* faults: the deliberately bad rows and their ground truth in `<landing>/_truth/`;
* columns, writers, arrow_strings, batches, catalogue: rendering and writing the files;
* city: the month loop and `generate_city`.

Everything is vectorised with numpy / pyarrow; output is byte-identical for the same arguments.
"""
from .appeals import APPEALS_COLUMNS, OPTOUTS_COLUMNS
from .city import generate_city
from .columns import FINDINGS_COLUMNS
from .faults import BAD_REASONS
from .population import MIGRANT_CODES, POPULATION_COLUMNS, WEIHAI_ERAS
from .volumes import REFERENCE_ADULTS, REFERENCE_MONTHS

__all__ = ["generate_city", "BAD_REASONS", "REFERENCE_ADULTS", "REFERENCE_MONTHS",
           "FINDINGS_COLUMNS", "APPEALS_COLUMNS", "OPTOUTS_COLUMNS", "POPULATION_COLUMNS",
           "WEIHAI_ERAS", "MIGRANT_CODES"]
