"""A local SMTP server that keeps every email it receives as an .eml file.

    python -m services.notifications.providers.mailsink --dir .local/mail --port 8025

For the local run without a mail account: point SMTP_HOST/SMTP_PORT at it with
SMTP_SECURITY=none. It accepts any sender and recipient and never relays.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.controller import Controller

log = logging.getLogger(__name__)


class MailSink:
    """An aiosmtpd handler that writes each message, as received, to `<directory>/*.eml`."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        partial = path.with_suffix(".part")
        # Written aside and renamed, so a reader never sees half a message.
        partial.write_bytes(envelope.original_content or envelope.content)
        partial.rename(path)
        log.info("mail stored as %s", path.name)
        return "250 Message accepted for delivery"


def start(directory: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8025):
    """Start the sink in a background thread; the caller stops the returned controller."""
    # A generous ready timeout: a busy machine may take seconds to answer the first probe.
    controller = Controller(MailSink(directory), hostname=host, port=port, ready_timeout=30)
    controller.start()
    return controller


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="where the .eml files go")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s mailsink %(message)s")
    # aiosmtpd tells of every connection at INFO; one line per stored mail is enough.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    controller = start(args.dir, args.host, args.port)
    print(f"mail sink listening on {args.host}:{args.port}, storing in {args.dir}", flush=True)
    try:
        stop.wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
