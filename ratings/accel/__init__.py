"""The rating app's code that exists only for speed (PostgreSQL): the one-statement claim of
``next`` and submit, and the quality run's COPY read with its cache. Each module is used by
one service, which keeps the plain Django path and chooses with ``config.accel.enabled``.
See README.md here."""
