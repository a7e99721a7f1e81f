"""One writer per collection: an OS file lock (fcntl) in the data directory; a second ingest waits its turn."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.errors import IndexStoreError

log = logging.getLogger(__name__)


@contextmanager
def writer_lock(data_dir: Path, collection: str, wait: bool = True) -> Iterator[bool]:
    """Hold the collection's writer lock; wait (saying so, with the holder's pid) while another process holds it.

    Yields True once held; with wait=False it yields False at once when another process holds it.

    The kernel drops the lock when its holder dies, even by SIGKILL, so a crashed ingest never blocks the next one.
    Readers take no lock. With a Chroma server the lock still lives in this data directory: it serializes every
    ingest that shares it (run ingests of a collection from the one host that keeps its lexical index).
    """
    folder = data_dir / "locks"
    path = folder / f"{collection}.lock"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
    except OSError as exc:
        raise IndexStoreError(
            f"cannot create the writer lock {path}: {exc}; check that the data directory is writable"
        ) from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            log.warning("waiting for another ingest to finish (pid %s, collection %r, %s)", holder, collection, path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
