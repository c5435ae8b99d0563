"""Providers for the local run, where no gateway account exists: SMS land in a file.

Email needs no client of its own locally: SmtpEmail hands it to the local sink
(`python -m services.notifications.providers.mailsink`), which keeps each as an .eml file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from services.notifications.providers.base import SendResult, mask_number

log = logging.getLogger(__name__)

SENT_FILE = "sent.jsonl"


class FileSms:
    """Appends each SMS as one JSON line to `<directory>/sent.jsonl` instead of sending it."""

    def __init__(self, directory: str | os.PathLike[str], name: str = "file"):
        self.directory = Path(directory)
        self.path = self.directory / SENT_FILE
        self.name = name

    def send_sms(self, to_e164: str, text: str, reference: str) -> SendResult:
        """Record the SMS (the whole number: this file is the local run's phone)."""
        message_id = uuid.uuid4().hex
        line = json.dumps(
            {
                "message_id": message_id,
                "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "to": to_e164,
                "text": text,
                "reference": reference,
            },
            ensure_ascii=False,
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as sent:
            # Several worker processes append to one file: one whole line at a time.
            fcntl.flock(sent, fcntl.LOCK_EX)
            sent.write(line + "\n")
        log.info(
            "SMS written to %s",
            self.path,
            extra={
                "provider": self.name,
                "reference": reference,
                "to": mask_number(to_e164),
                "provider_message_id": message_id,
            },
        )
        return SendResult(self.name, message_id)

    def sent(self) -> list[dict]:
        """Every SMS recorded so far, oldest first."""
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as sent:
            return [json.loads(line) for line in sent if line.strip()]
