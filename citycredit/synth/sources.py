"""A department of conf/sources.yaml while the city is generated: its settings, record serials,
the rows queued for later months, and the recent rows that corrections may pick."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from citycredit.identity import digits_matrix

from .arrow_strings import fixed_width_strings
from .batches import batch_size
from .writers import is_utf8

# record_id = prefix + 10-digit serial
RECORD_PREFIX = {
    "court": "FY", "public_security": "GA", "traffic_police": "JJ", "market_regulation": "SJ",
    "urban_management": "CG", "civilization_office": "WM", "volunteer_federation": "ZY",
    "blood_center": "XZ", "charity_federation": "CS", "commitments": "CN",
    "provincial_credit": "SX", "credit_services": "XY",
}
RECORD_SERIAL_DIGITS = 10
FILES_PER_DELIVERY = {"traffic_police": 2}   # two brigades deliver separately


class Source:
    """One configured source.

    settings: its conf/sources.yaml entry (kind, format, encoding, date_format, items; a missing
    format is csv, as in citycredit.config.load_sources). queue: run month → batches due then
    (follow-ups, copies, corrections). history: run month → the new rows delivered then, for
    later corrections and revocations. streams and roles: see volumes.plan_streams.
    """

    def __init__(self, source_id: str, settings: dict | None):
        settings = settings or {}
        self.source_id = source_id
        self.kind = settings.get("kind", "findings")
        self.format = settings.get("format") or "csv"
        self.encoding = str(settings.get("encoding", "utf-8")).lower()
        self.date_format = settings.get("date_format", "%Y-%m-%d")
        self.items = list(settings.get("items") or [])
        self.record_prefix = RECORD_PREFIX.get(
            source_id, (source_id.replace("_", "")[:2] or "RX").upper())
        self.files_per_delivery = FILES_PER_DELIVERY.get(source_id, 1)
        self.next_serial = 1
        self.queue: dict[int, list] = {}
        self.history: dict[int, dict] = {}
        self.streams: list = []
        self.roles: set = set()

    def serials(self, n: int) -> np.ndarray:
        """The next n record serials of this source."""
        serials = np.arange(self.next_serial, self.next_serial + n, dtype=np.int64)
        self.next_serial += n
        return serials

    def schedule(self, run_month: int, rows: dict) -> None:
        """Deliver `rows` (a batch) in the given run month."""
        if batch_size(rows):
            self.queue.setdefault(int(run_month), []).append(rows)

    @property
    def is_utf8_csv(self) -> bool:
        return self.format == "csv" and is_utf8(self.encoding)

    def record_ids(self, serials: np.ndarray) -> pa.Array:
        """record_id strings of the serials; null where a serial is negative (missing)."""
        prefix = np.frombuffer(self.record_prefix.encode("ascii"), np.uint8)
        matrix = np.empty((len(serials), len(prefix) + RECORD_SERIAL_DIGITS), np.uint8)
        matrix[:, :len(prefix)] = prefix
        matrix[:, len(prefix):] = digits_matrix(np.maximum(serials, 0), RECORD_SERIAL_DIGITS)
        return fixed_width_strings(matrix, serials < 0)
