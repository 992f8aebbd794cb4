#!/usr/bin/env python3
"""Requests and measurements for scripts/interop_sync (Python 3 standard library only).

Subcommands:

  get BASE PATH --origin O [--bearer TOKEN]
      One HTTP GET through a gateway; prints "<status> <X-M2M-RSC or -> <m2m:dbg>".

  signed BASE PATH --origin O --key-file F --key-id ID [--wrong-key]
      The same GET with a check value (scripts/check_value.py; sequence number from the clock in
      microseconds, so every call is new); --wrong-key signs with 32 zero bytes instead.

  token --secret-file F --holder O --jti J
      Prints an HS256 access-control token from issuer /id-in/das for holder O, id J, valid
      600 s (docs/wire-formats.md "Tokens").

  confirmed SEQ < gateway-list.json
      Reads `m2mguard authority gateway list --json`; prints "<id>=<confirmed seq>" per gateway,
      space separated, and exit 0 when every gateway confirmed SEQ without an error.

  latency --authority URL --ca F --token-file F --node N --probe PATH [--count C]
          NAME=BASE [NAME=BASE ...]
      C times: deactivate N through the operator API (one keep-alive HTTPS connection), and from
      its answer poll every gateway (one thread each, a keep-alive connection, a GET of PATH as N
      every 2 ms, at most 5 s) until it refuses N as not active; then activate N and wait (at
      most 5 s) until every gateway lets it through to the stage after status again. PATH
      should be one the policy forbids, so that neither answer involves the upstream. Prints
      per gateway "latency NAME: p50 X ms, p99 Y ms, max Z ms over C (in effect at the first
      probe: K)", K the deactivations already enforced when the first probe was answered; exit 1 if a deactivation
      or activation never took effect within 5 s.

The operator token is read from its file and never printed.
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import math
import os
import ssl
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_value  # noqa: E402  (the independent implementation next to this file)

TIMEOUT_S = 10
NOT_ACTIVE = "access denied: originator is not active"
EFFECT_S = 5.0
POLL_S = 0.002


def answer_line(status, rsc, raw):
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {}
    dbg = body.get("m2m:dbg", "") if isinstance(body, dict) else ""
    return f"{status} {rsc or '-'} {dbg}".rstrip()


class Gateway:
    """Keep-alive HTTP requests to one gateway, reconnecting when it closes."""

    def __init__(self, base):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.conn = None
        self.n = 0

    def get(self, path, origin, extra=None, rqi=None):
        self.n += 1
        headers = {"X-M2M-Origin": origin, "X-M2M-RI": rqi or f"sync-{os.getpid()}-{self.n}",
                   "X-M2M-RVI": "4", "Accept": "application/json", **(extra or {})}
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S)
            try:
                self.conn.request("GET", path, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status, resp.getheader("X-M2M-RSC"), raw
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def cmd_get(args):
    extra = {"Authorization": f"Bearer {args.bearer}"} if args.bearer else None
    try:
        print(answer_line(*Gateway(args.base).get(args.path, args.origin, extra)))
    except (OSError, http.client.HTTPException) as e:
        print(f"ERR {type(e).__name__}: {e}")
    return 0


def cmd_signed(args):
    key = bytes(32) if args.wrong_key else check_value.read_key(args.key_file)
    seq = time.time_ns() // 1000
    to = urllib.parse.unquote(args.path.removeprefix("/~"))  # the SP-relative target signed
    rqi = f"sync-signed-{seq}"
    c = check_value.canonical(2, to, args.origin, rqi, None, None, args.key_id, seq, b"", rvi="4")
    extra = {"X-M2M-AS": check_value.aus(key, args.key_id, seq, c)}
    try:
        print(answer_line(*Gateway(args.base).get(args.path, args.origin, extra, rqi)))
    except (OSError, http.client.HTTPException) as e:
        print(f"ERR {type(e).__name__}: {e}")
    return 0


def make_token(secret, holder, jti):
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"iss": "/id-in/das", "aud": "/id-in", "azp": holder, "jti": jti,
                           "exp": now + 600}).encode())
    sig = b64(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def cmd_token(args):
    print(make_token(check_value.read_key(args.secret_file), args.holder, args.jti))
    return 0


def cmd_confirmed(args):
    try:
        gateways = json.load(sys.stdin)["gateways"]
    except (ValueError, KeyError, TypeError) as e:
        print(f"unreadable gateway list: {e}")
        return 1
    good, parts = bool(gateways), []
    for g in gateways:
        c = g.get("confirmed") or {}
        parts.append(f"{g.get('id')}={c.get('seq', '-')}")
        good = good and c.get("seq") == args.seq and c.get("error") is None
    print(" ".join(parts))
    return 0 if good else 1


class Operator:
    """The authority's operator API over one keep-alive HTTPS connection."""

    def __init__(self, base, ca, token_file):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.ctx = ssl.create_default_context(cafile=ca)
        with open(token_file, encoding="utf-8") as f:
            self.auth = f"Bearer {f.read().strip()}"
        self.conn = None

    def post(self, path):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=TIMEOUT_S,
                                                        context=self.ctx)
            try:
                self.conn.request("POST", path, body=b"",
                                  headers={"Authorization": self.auth, "Content-Length": "0"})
                resp = self.conn.getresponse()
                raw = resp.read()
                if resp.status != 200:
                    raise SystemExit(f"POST {path}: {resp.status} {raw[:200]!r}")
                return json.loads(raw)["seq"]
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def wait_for(gateway, path, node, refused, since, out, name):
    """Polls until the gateway refuses `node` as not active (refused) or no longer does; puts
    (seconds from `since` to that answer, probes sent) in out[name], or None after EFFECT_S."""
    deadline, probes = since + EFFECT_S, 0
    while True:
        status, _rsc, raw = gateway.get(path, node)
        now, probes = time.monotonic(), probes + 1
        is_refused = status == 403 and NOT_ACTIVE in raw.decode("utf-8", "replace")
        if is_refused == refused:
            out[name] = (now - since, probes)
            return
        if now >= deadline:
            out[name] = None
            return
        time.sleep(POLL_S)


def round_trip(op, gateways, node, path, refused):
    """One publish, then every gateway polled in its own thread; the delays by gateway name."""
    action = "deactivate" if refused else "activate"
    op.post(f"/v1/nodes/{urllib.parse.quote(node, safe='')}/{action}")
    since, out = time.monotonic(), {}
    threads = [threading.Thread(target=wait_for, args=(gw, path, node, refused, since, out, name))
               for name, gw in gateways.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def percentile(values, p):
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def cmd_latency(args):
    op = Operator(args.authority, args.ca, args.token_file)
    gateways = {}
    for spec in args.gateways:
        name, _, base = spec.partition("=")
        gateways[name] = Gateway(base)
    delays = {name: [] for name in gateways}
    first = dict.fromkeys(gateways, 0)
    failures = []
    for i in range(args.count):
        for refused in (True, False):
            for name, got in round_trip(op, gateways, args.node, args.probe, refused).items():
                if got is None:
                    failures.append(f"{name}: {'de' if refused else ''}activation {i + 1} not in "
                                    f"effect within {EFFECT_S:.0f} s")
                elif refused:
                    delays[name].append(got[0] * 1000)
                    first[name] += got[1] == 1
    for name, ms in delays.items():
        if ms:
            print(f"latency {name}: p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} "
                  f"ms, max {max(ms):.1f} ms over {len(ms)} (in effect at the first probe: "
                  f"{first[name]})")
    for failure in failures[:10]:
        print(f"never took effect: {failure}")
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("get")
    g.add_argument("base")
    g.add_argument("path")
    g.add_argument("--origin", required=True)
    g.add_argument("--bearer")
    g.set_defaults(func=cmd_get)
    s = sub.add_parser("signed")
    s.add_argument("base")
    s.add_argument("path")
    s.add_argument("--origin", required=True)
    s.add_argument("--key-file", required=True)
    s.add_argument("--key-id", required=True)
    s.add_argument("--wrong-key", action="store_true")
    s.set_defaults(func=cmd_signed)
    t = sub.add_parser("token")
    t.add_argument("--secret-file", required=True)
    t.add_argument("--holder", required=True)
    t.add_argument("--jti", required=True)
    t.set_defaults(func=cmd_token)
    c = sub.add_parser("confirmed")
    c.add_argument("seq", type=int)
    c.set_defaults(func=cmd_confirmed)
    lat = sub.add_parser("latency")
    lat.add_argument("--authority", required=True)
    lat.add_argument("--ca", required=True)
    lat.add_argument("--token-file", required=True)
    lat.add_argument("--node", required=True)
    lat.add_argument("--probe", required=True)
    lat.add_argument("--count", type=int, default=100)
    lat.add_argument("gateways", nargs="+", metavar="NAME=BASE")
    lat.set_defaults(func=cmd_latency)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
