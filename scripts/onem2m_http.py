"""oneM2M over HTTP for the interop check scripts (Python 3 standard library only): one
exchange with a CSE or the gateway, and the "ok  NAME" / "FAIL NAME: why" report lines.

Imported by scripts/interop_targets.py, scripts/interop_checks.py and
scripts/interop_registration.py; independent of the gateway's code.
"""

import http.client
import json


def exchange(conn, method, path, headers, content=None):
    """Sends one request on `conn` (an http.client connection, closed afterwards) and returns
    (status, rsc, body): rsc is X-M2M-RSC or "-", body the parsed JSON or {}."""
    body = json.dumps(content).encode() if content is not None else None
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        rsc = resp.getheader("X-M2M-RSC") or "-"
    finally:
        conn.close()
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = {}
    return resp.status, rsc, parsed


def connection(host, port, context=None, timeout=10):
    """An HTTP connection, or HTTPS with the ssl `context`."""
    if context is not None:
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    return http.client.HTTPConnection(host, port, timeout=timeout)


class Report:
    """Prints one line per check, "ok  <prefix>NAME" or "FAIL <prefix>NAME: why", and counts
    the failures."""

    def __init__(self, prefix=""):
        self.prefix = prefix
        self.failed = 0

    def __call__(self, name, good, detail=""):
        if good:
            print(f"ok  {self.prefix}{name}")
        else:
            self.failed += 1
            print(f"FAIL {self.prefix}{name}: {detail}")
