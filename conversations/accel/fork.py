"""The import's parsing in a forked child process (acceleration ``import_copy``, with the
COPY writer): ``conversations.importers.pipeline.prepare_batches`` runs there.

Parsing, validating, hashing and encoding the records costs more CPU than storing them, and
in a thread the GIL would serialise that work with the writer's. ``worker_batches`` therefore
runs ``prepare_batches`` in a child process, so that the child parses batch n+1 while the
importer stores batch n and PostgreSQL indexes it. The child is forked: it inherits the open
file, the parser and the writer's settings as they are, and it never touches the database
connection (it leaves with ``os._exit``, as multiprocessing's forked processes do, so nothing
is closed on the way out). Its batches come back pickled through a pipe, widened to 1 MiB
(batches are megabytes); a thread in the child sends them, so that parsing goes on while a
batch is in the pipe, and at most ``QUEUED_BATCHES`` wait, which bounds the memory of both.
The bulk of a batch, the buffers its writer's ``pack`` marks ``pickle.PickleBuffer``, travels
out of band (pickle protocol 5): written from where it lies and read straight into the
writable buffer the importer then fills in, instead of being copied into the pickle, out of
it, and through ``multiprocessing``'s reading, several copies of hundreds of megabytes.
"""

import contextlib
import io
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import traceback
from collections.abc import Callable, Iterator

from conversations.importers.pipeline import Batch

QUEUED_BATCHES = 2  # batches the child may hold ready; bounds the memory of both processes
PIPE_BYTES = 1 << 20
POLL_SECONDS = 1.0
STOP_SECONDS = 5.0


def can_fork() -> bool:
    """Whether this process may fork the parser: the platform can fork, and this process is
    not daemonic. The children of Celery's default (prefork) pool are daemonic, and
    multiprocessing refuses them children; there the import parses in its own process (the
    writer still runs in its helper thread), slower but the same result."""
    return (
        "fork" in multiprocessing.get_all_start_methods()
        and not multiprocessing.current_process().daemon
    )


@contextlib.contextmanager
def worker_batches(make: Callable[[], Iterator[Batch]]) -> Iterator[Iterator[Batch]]:
    """Run ``make()`` in a forked child process; yield an iterator over its batches.

    An exception in the child is raised again here, with the child's traceback as a note.
    Leaving the block early stops the child.
    """
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    _widen(writer)
    process = context.Process(
        target=_child, args=(make, reader, writer), name="import-parser", daemon=True
    )
    process.start()
    writer.close()  # the child's is then the only write end: its exit is our end of file
    try:
        yield _receive(reader, process)
    finally:
        if process.is_alive():  # only when the import stopped before the end of the file
            process.terminate()
            process.join(timeout=STOP_SECONDS)
            if process.is_alive():
                process.kill()
        process.join()
        reader.close()


def _widen(connection) -> None:
    """A 1 MiB pipe instead of 64 KiB: 16 times fewer writes, reads and wake-ups per batch."""
    try:
        import fcntl  # POSIX only; where there is no fork this is never called
    except ImportError:
        return
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or above the system's limit
        fcntl.fcntl(connection.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _receive(reader, process) -> Iterator[Batch]:
    raw = io.FileIO(reader.fileno(), closefd=False)
    while True:
        try:
            header, sizes = pickle.loads(reader.recv_bytes())
            buffers = [_read_exactly(raw, size) for size in sizes]
            kind, value = pickle.loads(header, buffers=buffers)
        except EOFError:
            process.join()
            raise RuntimeError(
                f"the import's parsing process ended unexpectedly (exit code {process.exitcode})"
            ) from None
        if kind == "batch":
            yield value
        elif kind == "done":
            return
        else:
            raise value


def _child(make: Callable[[], Iterator[Batch]], reader, writer) -> None:
    """Parse and send; a thread sends, so that parsing goes on while a batch is in the pipe."""
    # the handlers inherited from the importing process (a Celery worker's, say) are not ours:
    # SIGTERM from the importer ends this process, and Ctrl-C is the importer's to handle
    with contextlib.suppress(ValueError):  # (only the main thread may set them)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    reader.close()  # so that writing fails, instead of blocking, once the importer is gone
    outbox: queue.Queue = queue.Queue(maxsize=QUEUED_BATCHES)
    sender = threading.Thread(target=_send, args=(outbox, writer), daemon=True)
    sender.start()
    try:
        for batch in make():
            _put(outbox, ("batch", batch), sender)
    except BaseException as exc:  # every failure goes back to the importer
        exc.add_note("".join(traceback.format_exception(exc)).rstrip())
        try:
            pickle.dumps(exc)
        except Exception:
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        _put(outbox, ("error", exc), sender)
    else:
        _put(outbox, ("done", None), sender)
    _put(outbox, None, sender)
    sender.join()


def _send(outbox: queue.Queue, writer) -> None:
    """Each message as its pickle and the sizes of its out-of-band buffers (one frame of
    ``writer``), then those buffers' bytes, as they are, on the pipe itself."""
    with contextlib.suppress(OSError):  # the importer is gone
        while (message := outbox.get()) is not None:
            buffers: list[pickle.PickleBuffer] = []
            header = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
            views = [buffer.raw() for buffer in buffers]
            writer.send_bytes(pickle.dumps((header, [v.nbytes for v in views]), protocol=5))
            for view in views:
                while view:
                    view = view[os.write(writer.fileno(), view) :]


def _read_exactly(raw: io.FileIO, size: int) -> bytearray:
    """The next ``size`` bytes of the pipe, read into a new buffer without other copies."""
    buffer = bytearray(size)
    with memoryview(buffer) as view:
        done = 0
        while done < size:
            n = raw.readinto(view[done:])
            if not n:
                raise EOFError
            done += n
    return buffer


def _put(outbox: queue.Queue, message: tuple | None, sender: threading.Thread) -> None:
    while True:
        try:
            outbox.put(message, timeout=POLL_SECONDS)
            return
        except queue.Full:
            if not sender.is_alive():  # nobody will read this
                os._exit(1)
