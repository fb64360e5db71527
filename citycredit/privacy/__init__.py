"""Privacy (SPEC §7, issue "Privacy"): an opted-out person's data deleted from every table, its
Delta history and the landing zone, never to come back; housekeeping; and a scan that proves it.

* erasure: the month's due opt-outs carried out over every table the catalogue marks as holding
  personal data (citycredit.catalog: identity numbers, subject keys, raw content, rows about a
  finding), then the files and log entries that held them removed from disk;
* landing: the delivery files still kept rewritten without the person's rows (lines blanked,
  manifests adjusted), and landing retention;
* the suppression list (subject keys only) that landing drops rows against
  (citycredit.ingest.suppress), and the erasure log, live below ingest and privacy
  (citycredit.suppression): both use them, neither imports the other for them;
* scan: every file under the warehouse and the landing zone searched for an identity number
  and its subject key;
* cleanup: killed runs' staging folders, vacuum with the configured retention, landing
  retention;
* task: the thin step and command functions.
"""
