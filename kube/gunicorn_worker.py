"""A gunicorn worker whose own error pages (sent before the app sees a request: a request line
too long, a malformed header) are RFC 9457 problem+json like every other error."""

from __future__ import annotations

import json

from gunicorn.workers.sync import SyncWorker


class _CapturedWrite:
    """Stands in for the client socket while gunicorn writes its HTML error page."""

    def __init__(self):
        self.data = b""

    def gettimeout(self):
        return 0.0

    def setblocking(self, _flag):
        pass

    def sendall(self, data: bytes) -> None:
        self.data += data


def problem_response(status: int, reason: str, detail: str) -> bytes:
    """A complete HTTP/1.1 response carrying a problem+json body."""
    body = json.dumps(
        {"type": "about:blank", "title": reason, "status": status, "detail": detail[:300]}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class ProblemSyncWorker(SyncWorker):
    def handle_error(self, req, client, addr, exc):
        captured = _CapturedWrite()
        # gunicorn decides the status and logs the error; only its page is replaced.
        super().handle_error(req, captured, addr, exc)
        status_line = captured.data.split(b"\r\n", 1)[0].decode("latin-1")
        _, _, rest = status_line.partition(" ")
        code, _, reason = rest.partition(" ")
        if not code.isdigit():
            return
        status = int(code)
        detail = str(exc) if status < 500 else "An unexpected error occurred."
        try:
            client.sendall(problem_response(status, reason or "Error", detail))
        except (TimeoutError, OSError):
            self.log.debug("Failed to send error message.")
