#!/usr/bin/env python3
"""Targets against ACME: the gateway decides on the resource ACME acts on, whatever the form.

Usage: interop_targets.py ACME_URL GATEWAY_URL PREFIX [--seed N] [--samples N]

Standard library only, independent of the gateway's code. The gateway in front of ACME requires
a timestamp (`ot`) on `/id-in/cse-in/<PREFIX>*` and fences positions on `<PREFIX>.../pos`, both
by structured name (see docs/wire-formats.md "Targets"). For a container created directly at ACME, random
samples of every TS-0004 way of writing its target (CSE-relative, `-`, SP-relative, the own SP's
absolute form, its resource id, percent-encoded `-`/`~`) are checked pairwise:

- ACME itself, asked directly, resolves the form to the container (200, the container's `ri`);
- through the gateway the same form without `ot` is refused by the gateway (403 4103), so the
  gateway applied the rule of the structured name; and with a fresh `ot` it passes, ACME's answer
  naming the same `ri`.

Then the geofence: a far position written through `-` and through the resource id is refused, a
near one passes. Prints `ok  NAME` or `FAIL NAME: why` per check.
"""

import argparse
import json
import os
import random
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onem2m_http import connection, exchange  # noqa: E402  (same directory)

RVI = "3"
FAR = {"lat": 48.14, "lon": 11.58}   # Munich: outside the fence
NEAR = {"lat": 52.5, "lon": 13.4}     # Berlin: inside


class Client:
    def __init__(self, base):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.n = 0

    def request(self, method, path, origin, ty=None, content=None, ot=False):
        self.n += 1
        headers = {"X-M2M-Origin": origin, "X-M2M-RI": f"tgt-{self.n}", "X-M2M-RVI": RVI,
                   "Accept": "application/json"}
        if ty is not None:
            headers["Content-Type"] = f"application/json;ty={ty}"
        if ot:
            headers["X-M2M-OT"] = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return exchange(connection(self.host, self.port), method, path, headers, content)


def ri_of(body):
    if isinstance(body, dict) and len(body) == 1:
        inner = next(iter(body.values()))
        if isinstance(inner, dict):
            return inner.get("ri")
    return None


def forms(path, ri):
    """Every way of writing the resource at `path` (below the CSEBase) or with id `ri`."""
    return [
        f"/cse-in/{path}",
        f"/-/{path}",
        f"/%2D/{path}",
        f"/~/id-in/cse-in/{path}",
        f"/~/id-in/-/{path}",
        f"/%7E/id-in/-/{path}",
        f"/_/acme.example.com/id-in/cse-in/{path}",
        f"/_/acme.example.com/id-in/-/{path}",
        f"/{ri}",
        f"/~/id-in/{ri}",
        f"/_/acme.example.com/id-in/{ri}",
    ]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("acme")
    p.add_argument("gateway")
    p.add_argument("prefix")
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--samples", type=int, default=8)
    a = p.parse_args()
    rnd = random.Random(a.seed)
    acme, gw = Client(a.acme), Client(a.gateway)
    failed = 0

    def check(name, good, why):
        nonlocal failed
        if good:
            print(f"ok  {name}")
        else:
            failed += 1
            print(f"FAIL {name}: {why}")

    origin = "Cinterop1"
    ae, cnt = f"{a.prefix}ae", "pos"
    made = acme.request("POST", "/~/id-in/cse-in", origin, 2,
                        {"m2m:ae": {"rn": ae, "api": "Nacme", "rr": True, "srv": ["3"]}})
    check("targets: AE created directly at ACME", made[0] == 201, made)
    made = acme.request("POST", f"/~/id-in/cse-in/{ae}", origin, 3, {"m2m:cnt": {"rn": cnt}})
    ri = ri_of(made[2])
    check("targets: container created directly at ACME", made[0] == 201 and ri, made)
    if failed:
        return 1
    path = f"{ae}/{cnt}"
    every = forms(path, ri)
    sample = rnd.sample(every, min(a.samples, len(every)))
    print(f"# seed {a.seed}: {len(sample)} of {len(every)} forms", file=sys.stderr)
    for form in sample:
        direct = acme.request("GET", form, origin)
        check(f"targets: ACME resolves {form} to the container",
              direct[0] == 200 and ri_of(direct[2]) == ri, direct[:2])
        refused = gw.request("GET", form, origin)
        check(f"targets: gateway applies the name's rule to {form}",
              refused[:2] == (403, "4103"), refused)
        passed = gw.request("GET", form, origin, ot=True)
        check(f"targets: {form} with ot reaches the same resource through the gateway",
              passed[0] == 200 and ri_of(passed[2]) == ri, passed[:2])
    for form in (f"/-/{path}", f"/~/id-in/{ri}"):
        far = gw.request("POST", form, origin, 4, {"m2m:cin": {"con": json.dumps(FAR)}}, ot=True)
        check(f"targets: far position through {form} refused by the geofence",
              far[:2] == (403, "4103"), far)
        near = gw.request("POST", form, origin, 4, {"m2m:cin": {"con": json.dumps(NEAR)}}, ot=True)
        check(f"targets: near position through {form} passes", near[:2] == (201, "2001"), near)
    gone = acme.request("DELETE", f"/~/id-in/cse-in/{ae}", origin)
    check("targets: AE deleted directly at ACME", gone[0] == 200, gone[:2])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
