"""The export's reads in one snapshot, without parallel query workers, a chunk read ahead.

Speed only (acceleration ``export_snapshot``, PostgreSQL): with it off, ``serial_reads``
does nothing and the records are read in the caller's thread, chunk after chunk, which is
the reference path of exports/canonical.py. See README.md in this folder.
"""

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection, connections, transaction

from config import accel


def can_read_ahead() -> bool:
    """Whether records may be read by a second thread on its own connection: the
    acceleration is on and no transaction is open (a second connection cannot see the rows
    an enclosing transaction wrote)."""
    return accel.enabled("export_snapshot") and not connection.in_atomic_block


@contextmanager
def serial_reads(*, snapshot: bool = False) -> Iterator[None]:
    """Read without parallel query workers (PostgreSQL; elsewhere this does nothing).

    Every chunk query is small, yet PostgreSQL plans most of them with parallel workers, and
    starting those for each query costs more than they save (on two CPUs, a 5,000-item chunk
    of pairs with both responses: 104 ms with two workers, 24 ms without). ``SET LOCAL``
    lasts until the end of the transaction this opens; with ``snapshot`` (only when this is
    the outermost transaction) every query in it sees the same REPEATABLE READ snapshot.
    Elsewhere no transaction is opened: SQLite would hold its write lock for the whole export.
    """
    if not accel.enabled("export_snapshot"):
        yield
        return
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        with connection.cursor() as cursor:
            if snapshot and outermost:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        yield


_DONE = object()


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


def read_ahead(produce: Callable[[], Iterator[list]], depth: int = 1) -> Iterator[list]:
    """Run ``produce()`` in a thread with its own database connection and yield what it
    yields, at most ``depth`` items ahead of the caller. The thread's errors are raised here;
    when the caller stops early, the thread stops after its current item."""
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in produce():
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the caller, which raises it
            put(_Failed(exc))
        finally:
            connections.close_all()  # this thread's connections only

    thread = threading.Thread(target=run, name="export-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()
