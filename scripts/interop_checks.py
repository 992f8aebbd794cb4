#!/usr/bin/env python3
"""Message checks against a real CSE: the device recipe of docs/message-checks.md, done by an independent
client (Python standard library; check values from scripts/check_value.py, an HS256 token made
here), through a gateway that requires a check value, a timestamp and a token on every target.

  interop_checks.py GATEWAY_URL KEY_FILE KEY_ID ORIGIN TOKEN_SECRET_FILE

Prints one line per check, "ok  <check>" or "FAIL <check>: <detail>"; exit status 1 if any
check failed. Sequence numbers start from the current time in microseconds, so runs never
collide with earlier ones in the gateway's repository.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_value  # noqa: E402  (the independent implementation next to this file)
from onem2m_http import Report  # noqa: E402

CSE_ID = "/id-in"
report = Report("checks: ")


def token(secret, holder):
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"iss": "/id-in/das", "aud": CSE_ID, "azp": holder,
                           "jti": f"interop-{now}", "exp": now + 600}).encode())
    sig = b64(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


class Device:
    def __init__(self, base, key, key_id, origin, tkn):
        self.base, self.key, self.key_id, self.origin, self.token = base, key, key_id, origin, tkn
        self.seq = int(time.time() * 1_000_000)

    def send(self, method, path, rqi, ty=None, content=b"", seq=None, sign=True, key=None):
        """path is SP-relative below the gateway, e.g. /id-in/cse-in; returns (status, rsc)."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        ot = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        op = {"GET": 2, "PUT": 3, "DELETE": 4}.get(method, 1 if ty else 5)
        headers = {"X-M2M-Origin": self.origin, "X-M2M-RI": rqi, "X-M2M-RVI": "4",
                   "X-M2M-OT": ot, "Accept": "application/json",
                   "Authorization": f"Bearer {self.token}"}
        if sign:
            c = check_value.canonical(op, path, self.origin, rqi, ot, ty, self.key_id, seq, content,
                                      rvi="4")
            headers["X-M2M-AS"] = check_value.aus(key or self.key, self.key_id, seq, c)
        if ty is not None:
            headers["Content-Type"] = f"application/json;ty={ty}"
        request = urllib.request.Request(self.base + "/~" + path, data=content or None,
                                         method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, r.headers.get("X-M2M-RSC")
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("X-M2M-RSC")


def main():
    base, key_file, key_id, origin, secret_file = sys.argv[1:6]
    key = check_value.read_key(key_file)
    secret = check_value.read_key(secret_file)
    d = Device(base, key, key_id, origin, token(secret, origin))
    cse = f"{CSE_ID}/cse-in"
    run = int(time.time())

    got = d.send("GET", cse, f"cv-{run}-1")
    report("signed, timestamped retrieve with a token reaches ACME", got == (200, "2000"), got)
    seq = d.seq
    got = d.send("GET", cse, f"cv-{run}-1", seq=seq)
    report("the same request replayed is refused", got == (403, "4103"), got)
    got = d.send("GET", cse, f"cv-{run}-2", seq=seq)
    report("a reused sequence number is refused", got == (403, "4103"), got)
    got = d.send("GET", cse, f"cv-{run}-3", sign=False)
    report("an unsigned request is refused", got == (403, "4103"), got)
    got = d.send("GET", cse, f"cv-{run}-4", key=bytes(32))
    report("a request signed with the wrong key is refused", got == (403, "4103"), got)
    cnt = json.dumps({"m2m:cnt": {"rn": f"iop_checks_{run}"}}).encode()
    got = d.send("POST", cse, f"cv-{run}-5", ty=3, content=cnt)
    report("a signed container create (content digest) is created by ACME", got == (201, "2001"), got)
    got = d.send("DELETE", f"{cse}/iop_checks_{run}", f"cv-{run}-6")
    report("legitimate: the signed delete of that container passes", got == (200, "2002"), got)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
