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
import re
import ssl
import sys
import time
import urllib.parse

TIMEOUT_S = 10
RELEASE = "4"
ADMIN = "CAdmin"
AE1_ORIGIN = "Cinterop1"
AE2_ORIGIN = "Cinterop2"

# Attributes whose values differ from run to run: replaced by stable per-run symbols, so that
# the structure (which resource is whose parent, etc.) is still compared.
ID_KEYS = {"ri", "pi", "aei", "csi", "cr"}
TIMESTAMP = re.compile(r"\d{8}T\d{6}(,\d+)?")


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
        if isinstance(self.body, dict):
            return str(self.body.get("m2m:dbg", ""))
        return (self.body or "").strip() if isinstance(self.body, str) else ""


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
        headers = {"X-M2M-RI": rqi, "X-M2M-RVI": RELEASE, "Accept": "application/json"}
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


# --- the scenario ---------------------------------------------------------------------------

def scenario_steps(prefix):
    """(name, originator, method, path, ty, content, expected X-M2M-RSC), in order.

    Both SP-relative (/~/id-in/cse-in/...) and CSE-relative (/cse-in/...) targets are used, as
    the gateway normalises them for its policy but must forward them unchanged.
    """
    ae1, ae2 = f"{prefix}ae1", f"{prefix}ae2"
    cse = "/~/id-in/cse-in"
    cnt = f"{cse}/{ae1}/cnt"

    def ae(rn):  # empty lists (e.g. "poa": []) are refused by ACME: leave them out
        return {"m2m:ae": {"rn": rn, "api": "Nacme", "rr": True, "srv": ["3"]}}

    def cin(i):
        return {"m2m:cin": {"rn": f"cin{i}", "cnf": "text/plain:0", "con": f"reading-{i}"}}

    return [
        ("create AE1", AE1_ORIGIN, "POST", cse, 2, ae(ae1), 2001),
        ("create AE2 (CSE-relative)", AE2_ORIGIN, "POST", "/cse-in", 2, ae(ae2), 2001),
        ("create container", AE1_ORIGIN, "POST", f"{cse}/{ae1}", 3,
         {"m2m:cnt": {"rn": "cnt", "mni": 10}}, 2001),
        *[(f"create contentInstance {i}", AE1_ORIGIN, "POST", cnt, 4, cin(i), 2001)
          for i in (1, 2, 3)],
        ("retrieve latest", AE1_ORIGIN, "GET", f"{cnt}/la", None, None, 2000),
        # An update carries no ty: ACME refuses ty outside CREATE.
        ("update container", AE1_ORIGIN, "PUT", cnt, None,
         {"m2m:cnt": {"lbl": ["interop:updated"]}}, 2004),
        ("retrieve container (CSE-relative)", AE1_ORIGIN, "GET", f"/cse-in/{ae1}/cnt",
         None, None, 2000),
        ("discover contentInstances", AE1_ORIGIN, "GET", f"{cse}/{ae1}?fu=1&ty=4",
         None, None, 2000),
        # The gateway's policy permits this; ACME's own ACPs must still refuse it.
        ("other originator refused by ACME", AE2_ORIGIN, "GET", cnt, None, None, 4103),
        ("delete latest contentInstance", AE1_ORIGIN, "DELETE", f"{cnt}/la", None, None, 2002),
        ("retrieve oldest", AE1_ORIGIN, "GET", f"{cnt}/ol", None, None, 2000),
        ("delete container", AE1_ORIGIN, "DELETE", cnt, None, None, 2002),
        ("delete AE2", AE2_ORIGIN, "DELETE", f"{cse}/{ae2}", None, None, 2002),
        ("delete AE1", AE1_ORIGIN, "DELETE", f"{cse}/{ae1}", None, None, 2002),
        ("admin finds AE1 gone", ADMIN, "GET", f"{cse}/{ae1}", None, None, 4004),
    ]


class Normaliser:
    """Makes one run's answers comparable with another's.

    Timestamps become "<ts>"; the run's name prefix becomes "<prefix>"; values of ID_KEYS become
    "<id:N>", numbered in order of first appearance, and so do their occurrences inside other
    strings (paths, debug messages). Discovery lists are sorted.
    """

    def __init__(self, prefix):
        self.prefix = prefix
        self.symbols = {}

    def step(self, name, method, path, resp):
        if isinstance(resp.body, (dict, list)):
            self._collect(resp.body)
        return {
            "step": name,
            "request": f"{method} {path.replace(self.prefix, '<prefix>')}",
            "status": resp.status,
            "rsc": resp.rsc,
            "rqi_echoed": resp.headers.get("X-M2M-RI") == resp.sent_rqi,
            "rvi": resp.headers.get("X-M2M-RVI"),
            "content_type": resp.headers.get("Content-Type"),
            "body": self._value(None, resp.body),
        }

    def _collect(self, value):
        if isinstance(value, dict):
            for key in sorted(value):
                item = value[key]
                if key in ID_KEYS and isinstance(item, str) and item not in self.symbols:
                    self.symbols[item] = f"<id:{len(self.symbols) + 1}>"
                self._collect(item)
        elif isinstance(value, list):
            for item in value:
                self._collect(item)

    def _text(self, text):
        text = TIMESTAMP.sub("<ts>", text)
        text = text.replace(self.prefix, "<prefix>")
        for raw in sorted(self.symbols, key=len, reverse=True):  # longest first: no partial hits
            text = text.replace(raw, self.symbols[raw])
        return text

    def _value(self, key, value):
        if isinstance(value, dict):
            return {k: self._value(k, v) for k, v in value.items()}
        if isinstance(value, list):
            items = [self._value(key, v) for v in value]
            return sorted(items) if key == "m2m:uril" else items
        if isinstance(value, str):
            if key in ID_KEYS and value in self.symbols:
                return self.symbols[value]
            return self._text(value)
        return value


def run_scenario(client, prefix):
    norm = Normaliser(prefix)
    steps, problems = [], []
    try:
        for name, origin, method, path, ty, content, want in scenario_steps(prefix):
            resp = client.request(method, path, origin, ty, content)
            steps.append(norm.step(name, method, path, resp))
            if resp.rsc != str(want):
                problems.append(f"{name}: expected rsc {want}, got {resp.status} "
                                f"{resp.rsc} {resp.debug_text()}")
    finally:
        cleanup(client, prefix, steps)
    return steps, problems


def cleanup(client, prefix, steps):
    """ACME's database outlives one run: remove the AEs a failed run left behind, as the admin.
    Each AE's resource id is its originator, so a leftover AE would break the next run."""
    deleted = {s["step"] for s in steps if s["rsc"] == "2002"}
    for ae, step in ((f"{prefix}ae1", "delete AE1"), (f"{prefix}ae2", "delete AE2")):
        if step not in deleted:
            try:
                client.request("DELETE", f"/~/id-in/cse-in/{ae}", ADMIN)
            except OSError:
                pass


# --- command line ---------------------------------------------------------------------------

def cmd_scenario(args):
    client = Client(args.base, args.tls_dir)
    try:
        steps, problems = run_scenario(client, args.prefix)
    except (OSError, http.client.HTTPException) as e:
        print(f"scenario aborted: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(steps, f, indent=1, sort_keys=True)
        f.write("\n")
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(steps)} steps, {len(problems)} unexpected")
    return 1 if problems else 0


def load_steps(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"cannot read steps: {e}") from None


def cmd_compare(args):
    expected, actual = load_steps(args.expected), load_steps(args.actual)
    diffs = []
    if len(expected) != len(actual):
        diffs.append(f"{len(expected)} steps != {len(actual)} steps")
    for want, got in zip(expected, actual):
        for key in sorted(set(want) | set(got)):
            if want.get(key) != got.get(key):
                diffs.append(f"{want.get('step')}: {key} {json.dumps(want.get(key))[:120]} "
                             f"!= {json.dumps(got.get(key))[:120]}")
    more = f" (+{len(diffs) - 3} more)" if len(diffs) > 3 else ""
    print("; ".join(diffs[:3]) + more if diffs else "identical")
    return 1 if diffs else 0


def cmd_step(args):
    found = [s for s in load_steps(args.file) if s["step"] == args.name]
    if not found:
        print(f"no step {args.name!r}")
        return 1
    step = found[0]
    debug = step["body"].get("m2m:dbg", "") if isinstance(step["body"], dict) else ""
    print(f"{step['status']} {step['rsc'] or '-'} {debug}".rstrip())
    return 0


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
    try:
        resp = client.request(args.method, args.path, args.origin, args.ty, content, args.cert)
    except (OSError, http.client.HTTPException) as e:
        print(f"ERR {type(e).__name__}: {e}")
        return 0
    print(f"{resp.status} {resp.rsc or '-'} {resp.debug_text()}".rstrip())
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("scenario", help="run the scenario, write normalised steps")
    s.add_argument("base")
    s.add_argument("--prefix", required=True, help="resource-name prefix unique to this run")
    s.add_argument("--out", required=True)
    s.add_argument("--tls-dir")
    s.set_defaults(func=cmd_scenario)

    c = sub.add_parser("compare", help="compare two step files")
    c.add_argument("expected")
    c.add_argument("actual")
    c.set_defaults(func=cmd_compare)

    t = sub.add_parser("step", help="print one step of a step file")
    t.add_argument("file")
    t.add_argument("name")
    t.set_defaults(func=cmd_step)

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
