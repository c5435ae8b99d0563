"""A local SMS gateway for benchmarks, in its own process: it answers as the `userkey` preset
expects (a POST form of userkey, passkey, to and message; JSON `{"status": "1", "messageId":
...}`) and keeps each message with the time it arrived, so a benchmark can see when an SMS
reached the gateway without sharing a process (or the GIL) with it.

    python bench/sms_gateway.py --port 8025

    POST /sms                          send one SMS
    GET  /received?since=N&count=K     the messages from the Nth on, after waiting (up to
                                       `timeout` seconds, default 30) until K have arrived
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

# A gateway that needs no keys would hide a client that forgets them.
FORM_FIELDS = ("userkey", "passkey", "to", "message")


class Gateway:
    """The WSGI app: every accepted message, in order of arrival, with its wall-clock time."""

    def __init__(self):
        self.received: list[dict] = []
        self.arrived = threading.Condition()

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path == "/sms" and request.method == "POST":
            response = self.send(request)
        elif request.path == "/received" and request.method == "GET":
            response = self.list_received(request)
        else:
            response = Response("not found", status=404)
        return response(environ, start_response)

    def send(self, request: Request) -> Response:
        arrived_at = time.time()
        form = request.form
        missing = [name for name in FORM_FIELDS if not form.get(name)]
        if missing:
            body = {"status": "0", "text": f"missing {', '.join(missing)}"}
            return Response(json.dumps(body), mimetype="application/json")
        with self.arrived:
            self.received.append({"at": arrived_at, "to": form["to"], "message": form["message"]})
            number = len(self.received)
            self.arrived.notify_all()
        body = {"status": "1", "messageId": f"bench-{number}", "text": "Success"}
        return Response(json.dumps(body), mimetype="application/json")

    def list_received(self, request: Request) -> Response:
        since = request.args.get("since", 0, type=int)
        count = request.args.get("count", 0, type=int)
        timeout = request.args.get("timeout", 30.0, type=float)
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
            found = self.received[since:]
        return Response(json.dumps(found), mimetype="application/json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # werkzeug logs every request at INFO: a line per SMS would cost more than the answer.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Threaded, so keep-alive connections (HTTP/1.1) of several clients are served at once.
    server = make_server("127.0.0.1", args.port, Gateway(), threaded=True)
    print(f"SMS gateway on http://127.0.0.1:{args.port}/sms", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
