#!/usr/bin/env python3
"""oneM2M client for scripts/interop (Python 3 standard library only).

Subcommands:

  scenario BASE --prefix P --out FILE [--tls-dir D]
      Runs the interop scenario against BASE (ACME directly, or a gateway in front of it) and
      writes its steps, normalised, as JSON to FILE. Exit 0 when every step answered with the
      oneM2M response status code the scenario expects, 1 otherwise (mismatches on stderr).

  compare EXPECTED ACTUAL
      Compares two step files written by "scenario"; prints the first differences by step and
      field. Exit 0 when they are identical.

  step FILE NAME
      Prints one step of a step file like "request" prints an answer.

  request BASE METHOD PATH [--origin O] [--tls-dir D] [--cert NAME] [--ty N]
                           [--body JSON | --body-bytes N]
      Sends one request and prints one line: "<status> <X-M2M-RSC or -> <m2m:dbg or text>",
      or "ERR <exception>" when no HTTP answer came (refused connection, TLS alert, reset).

With an https BASE, the client trusts D/ca.pem and presents the certificate D/<NAME>.pem with
key D/<NAME>.key. NAME defaults to the originator, because the mTLS gateway requires
X-M2M-Origin == certificate CN: there is one TLS client context per originator.
"""

import argparse
import http.client
import itertools
import json
import os
import ssl
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onem2m_client as scenario  # noqa: E402  (same directory)

TIMEOUT_S = 10


class Response:
    def __init__(self, status, headers, raw, rqi):
        self.status = status
        self.headers = headers
        self.raw = raw
        self.sent_rqi = rqi
        self.rsc = headers.get("X-M2M-RSC")
        try:
            self.body = json.loads(raw) if raw else None
        except ValueError:
            self.body = raw.decode("utf-8", "replace")

    def debug_text(self):
        return scenario.debug_text(self.body)


class Client:
    """Requests to one base URL; over https, one TLS context per presented certificate."""

    def __init__(self, base, tls_dir=None):
        url = urllib.parse.urlsplit(base)
        self.https = url.scheme == "https"
        self.host, self.port = url.hostname, url.port
        self.tls_dir = tls_dir
        self.contexts = {}
        self.counter = itertools.count(1)
        # Request ids unique across runs and processes (ACME and logs see them all).
        self.rqi_prefix = f"interop-{os.getpid()}-{int(time.time() * 1000)}"

    def context(self, cert):
        if cert not in self.contexts:
            if not self.tls_dir:
                raise SystemExit("an https base needs --tls-dir")
            ctx = ssl.create_default_context(cafile=os.path.join(self.tls_dir, "ca.pem"))
            ctx.set_alpn_protocols(["http/1.1"])
            if cert != "none":
                ctx.load_cert_chain(
                    os.path.join(self.tls_dir, f"{cert}.pem"),
                    os.path.join(self.tls_dir, f"{cert}.key"),
                )
            self.contexts[cert] = ctx
        return self.contexts[cert]

    def request(self, method, path, origin, ty=None, content=None, cert=None):
        """One request on a fresh connection. content: dict (JSON), bytes, or None."""
        rqi = f"{self.rqi_prefix}-{next(self.counter)}"
        headers = {"X-M2M-RI": rqi, "X-M2M-RVI": scenario.RELEASE, "Accept": "application/json"}
        if origin is not None:
            headers["X-M2M-Origin"] = origin
        body = None
        if content is not None:
            body = content if isinstance(content, bytes) else json.dumps(content).encode()
            headers["Content-Type"] = "application/json" + (f";ty={ty}" if ty else "")
        if self.https:
            ctx = self.context(cert or origin or "none")
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=TIMEOUT_S, context=ctx)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S)
        try:
            try:
                conn.request(method, path, body=body, headers=headers)
            except (BrokenPipeError, ConnectionResetError):
                # The server may answer (e.g. 413) and close before the whole body is sent;
                # like curl, read that early answer instead of reporting the failed send.
                pass
            resp = conn.getresponse()
            return Response(resp.status, resp.headers, resp.read(), rqi)
        finally:
            conn.close()


# --- command line ---------------------------------------------------------------------------

def cmd_scenario(args):
    client = Client(args.base, args.tls_dir)
    return scenario.scenario_command(
        args.out, lambda: scenario.run_requests(client, args.prefix),
        (OSError, http.client.HTTPException))


def cmd_request(args):
    client = Client(args.base, args.tls_dir)
    content = None
    if args.body_bytes is not None:
        # A syntactically fine AE create whose size is all in one attribute.
        filler = "x" * args.body_bytes
        content = json.dumps({"m2m:ae": {"rn": "big", "api": "Nacme", "rr": False,
                                         "lbl": [filler]}}).encode()
    elif args.body is not None:
        content = args.body.encode()
    return scenario.request_command(
        lambda: client.request(args.method, args.path, args.origin, args.ty, content, args.cert),
        (OSError, http.client.HTTPException))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("scenario", help="run the scenario, write normalised steps")
    s.add_argument("base")
    s.add_argument("--prefix", required=True, help="resource-name prefix unique to this run")
    s.add_argument("--out", required=True)
    s.add_argument("--tls-dir")
    s.set_defaults(func=cmd_scenario)

    scenario.add_step_commands(sub)

    r = sub.add_parser("request", help="send one request, print status, rsc and debug text")
    r.add_argument("base")
    r.add_argument("method")
    r.add_argument("path")
    r.add_argument("--origin", help="X-M2M-Origin; omitted when not given")
    r.add_argument("--tls-dir")
    r.add_argument("--cert", help="client certificate name in --tls-dir (default: origin; "
                                  "'none' for no certificate)")
    r.add_argument("--ty", type=int)
    body = r.add_mutually_exclusive_group()
    body.add_argument("--body", help="JSON content")
    body.add_argument("--body-bytes", type=int, help="send an AE create of about this size")
    r.set_defaults(func=cmd_request)

    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
