"""Code of the exports app that exists only for speed, behind ``config.accel.enabled``.

The reference export is exports/pipeline.py reading exports/canonical.py record by record;
everything here is an acceleration of it that an operator can switch off
(``RATELOOP_ACCEL``). README.md in this folder says, for each one, what it is for, how it is
measured, what it relies on and how to turn it off.

- ``fast``: the fast export (``export_cache``) with ``cache``, ``decisions``, ``reading``;
- ``warm``: the cache filled when pairs are queued (``export_cache``);
- ``snapshot``: the reference read in one snapshot, a chunk read ahead (``export_snapshot``).
"""
