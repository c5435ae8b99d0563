"""Reading, checking and preparing an import's file (no database), in the importing process or
in a process of its own.

Preparing a batch (every row checked, NIK and No. KK encrypted and hashed, events signed) is
most of an import's Python. In the importing process it shares the interpreter with the thread
that writes the previous batch; a large file is therefore prepared by a child process while
the importing process writes, so the two use both cores. The child is a plain
`python -m services.registry.import_prepare` (a Celery worker's pool processes are daemonic
and may not fork multiprocessing children): it reads the job and the data keys from its stdin
and sends its results back, pickled, through a pipe of its own (its stdout and stderr stay
the worker's logs).
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from services.registry.groups import Rules
from services.registry.import_batch import PreparedBatch, prepare_batch
from services.registry.import_check import CheckedGroup, check_group, group_key, key_of
from services.registry.spreadsheet import NO_DATA_ROWS, Sheet, file_error
from shared.encryption import DataKeys, data_keys, use_data_keys
from shared.errors import InvalidInput
from shared.events.outbox import EventPreparer
from shared.logs import configure_logging, correlation_id_var, mask_personal_data
from shared.scope import RegionScope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepareJob:
    """What preparing an import's file needs: no database, nothing of the importing process."""

    path: str
    file_format: str
    scope: RegionScope
    # Rows a crashed run saved: their groups are skipped (their NIKs still count as seen).
    resume_rows: int
    today: date
    registered: EventPreparer
    rules: Rules
    batch_rows: int


def prepared_batches(job: PrepareJob) -> Iterator[int | PreparedBatch]:
    """The file's number of data rows, then its groups checked and prepared, a batch of about
    `job.batch_rows` rows at a time, in the file's order."""
    sheet = Sheet(job.file_format, Path(job.path))
    # First pass: where each group's last row is, so the second pass can check a group as
    # soon as it is complete and keep only unfinished groups in memory.
    last_row, total = {}, 0
    for number, (name, village) in sheet.cells(("group_name", "village_code")):
        last_row[key_of(name, village)] = number
        total += 1
    if total == 0:
        raise file_error(NO_DATA_ROWS)
    yield total
    pending: dict[tuple[str, str], list] = {}
    seen_niks: dict[str, int] = {}
    batch: list[CheckedGroup] = []
    batch_rows = 0
    # A redelivered run skips the groups the crashed one saved, in the same order.
    skipped_rows = 0
    for number, record in sheet.records():
        key = group_key(record)
        pending.setdefault(key, []).append((number, record))
        if last_row[key] != number:
            continue
        rows = pending.pop(key)
        if skipped_rows + len(rows) <= job.resume_rows:
            skipped_rows += len(rows)
            seen_niks.update((r["nik"], n) for n, r in rows if "nik" in r)
            continue
        batch.append(check_group(rows, job.scope, seen_niks, job.today))
        batch_rows += len(rows)
        if batch_rows >= job.batch_rows:
            yield prepare_batch(batch, job.registered, job.rules)
            batch, batch_rows = [], 0
    if batch:
        yield prepare_batch(batch, job.registered, job.rules)


# --- A process of its own ----------------------------------------------------------------------

# Messages from the child, each a pickled tuple: ("item", what prepared_batches yields), then
# ("end",); or ("invalid", detail, errors) for a file the user must fix, or ("error", text).
_PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL


class PreparingProcessError(RuntimeError):
    """The preparing process failed, or ended without finishing."""


@contextmanager
def preparing_process(job: PrepareJob) -> Iterator[_Received]:
    """What `prepared_batches(job)` yields, made by a child process; the child is stopped when
    the context ends, finished or not."""
    read_fd, write_fd = os.pipe()
    try:
        # This interpreter, running this module.
        process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(write_fd)],
            stdin=subprocess.PIPE,
            pass_fds=(write_fd,),
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    try:
        with os.fdopen(read_fd, "rb") as results:
            keys = data_keys()
            # The data keys go to the child through a pipe between the two processes, never on
            # its command line (which any local user can read); wherever this process got
            # them from (settings, key files), the child needs no access of its own.
            pickle.dump((job, keys.keys, keys.lookup_key), process.stdin, _PICKLE_PROTOCOL)
            process.stdin.close()
            yield _Received(results, process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


class _Received:
    """What the child sends, as `prepared_batches` yields it; `process` is the child."""

    def __init__(self, results, process: subprocess.Popen):
        self._results = results
        self.process = process

    def __iter__(self) -> Iterator[int | PreparedBatch]:
        while True:
            try:
                # The child is this interpreter running our own module, fed by us: trusted.
                message = pickle.load(self._results)  # noqa: S301
            except EOFError:
                raise PreparingProcessError(
                    "the process preparing the file ended without finishing "
                    f"(exit code {self.process.wait()})"
                ) from None
            kind = message[0]
            if kind == "end":
                return
            if kind == "item":
                yield message[1]
            elif kind == "invalid":
                raise InvalidInput(message[1], errors=message[2])
            else:
                raise PreparingProcessError(message[1])


def _send(out, message: tuple) -> None:
    pickle.dump(message, out, _PICKLE_PROTOCOL)


def main(argv: list[str]) -> int:
    """The child: prepare the job read from stdin, send the results through the pipe whose
    descriptor is the first argument."""
    configure_logging("registry")
    job, keys, lookup_key = pickle.load(sys.stdin.buffer)  # noqa: S301 (from our parent)
    use_data_keys(DataKeys(keys, lookup_key))
    correlation_id_var.set(job.registered.correlation_id)
    with os.fdopen(int(argv[1]), "wb") as out:
        try:
            for item in prepared_batches(job):
                _send(out, ("item", item))
        except BrokenPipeError:
            return 1  # the importing process stopped reading: it has failed or ended
        except InvalidInput as exc:
            _send(out, ("invalid", exc.detail, exc.errors))
        except Exception as exc:
            log.exception("preparing an import's file failed")
            # Messages may quote a value; never send a NIK in full.
            _send(out, ("error", mask_personal_data(f"{type(exc).__name__}: {exc}")))
        else:
            _send(out, ("end",))
    return 0


if __name__ == "__main__":
    # Run as the module itself, not as __main__, so that what the parent pickles and what the
    # child runs are the same classes.
    from services.registry.import_prepare import main as child_main

    sys.exit(child_main(sys.argv))
