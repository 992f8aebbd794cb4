#!/usr/bin/env python3
"""A tiny oneM2M HTTP upstream for the operations checks (scripts/package_check,
scripts/prometheus_check): every request is answered 200 with X-M2M-RSC 2000, X-M2M-RI echoed
and a JSON body naming what arrived ({"m2m:dbg": "<METHOD> <target> from <X-M2M-Origin>"}).
It stands in for a CSE where only "did the request get through the gateway" matters; the
interoperability with a real CSE is scripts/interop's job.

Usage:  ops_upstream.py PORT       (binds 127.0.0.1:PORT; prints "listening" when ready)
Standard library only. Stops on SIGTERM or SIGINT.
"""

import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= MAX_BODY:
            self.rfile.read(length)
        origin = self.headers.get("X-M2M-Origin", "")
        body = json.dumps({"m2m:dbg": f"{self.command} {self.path} from {origin}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-M2M-RSC", "2000")
        self.send_header("X-M2M-RI", self.headers.get("X-M2M-RI", ""))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = answer

    def log_message(self, fmt, *args):
        sys.stderr.write("upstream: " + (fmt % args) + "\n")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("listening", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
