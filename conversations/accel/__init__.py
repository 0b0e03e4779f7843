"""Code of the conversations app that exists only for speed (see README.md in this folder).

Nothing here is needed for a correct import: with ``RATELOOP_ACCEL=off`` (or on SQLite) the
plain path in ``conversations.importers`` and ``conversations.services`` does the same work.
The services take these paths only where ``config.accel.enabled(name)`` says so:

- ``import_copy``: ``copy_writer`` (binary COPY writer, stored ids looked up with one array),
  ``binary`` (the COPY format), ``foreign_keys`` (set-based foreign-key checks),
  ``copy_batches`` (a batch's rows as one buffer per table), ``fastpath`` (plain native
  records straight to COPY rows), ``fork`` (the parser in a forked child process);
- ``job_progress``: ``job_progress`` (progress on a second connection).
"""
