#!/usr/bin/env python3
"""Registration through the gateway against ACME (docs/registration.md).

Usage: interop_registration.py ACME_URL GATEWAY_URL TLS_DIR PREFIX

Standard library only, independent of the gateway's code. GATEWAY_URL is an HTTPS gateway in
front of ACME that requires client certificates, with the shipped policies (AEs from loopback
may register below the CSE base and become devices) and CAdmin enrolled as an operator.
TLS_DIR holds ca.pem and, for each registrant NAME in REGISTRANTS, NAME.pem / NAME.key (CN =
NAME). ACME itself (ACME_URL) is asked as CAdmin, to see what reached it.

Each registrant registers with its own certificate; the id ACME assigns is bound to it. Checks:
registration with `C`, `S`, without `From` and with a chosen id, each followed by the
registered AE's own requests; a re-registration refused by ACME as it would be directly; a
registration the policy refuses (a remoteCSE) that never reaches ACME; a registrant that is
not a node yet doing anything else; another certificate spoofing an assigned id, and the bound
certificate acting as another id; deregistration and what it ends. Every attack is followed by
a legitimate request. Prints `ok  NAME` or `FAIL NAME: why` per check.
"""

import os
import ssl
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onem2m_http import Report, connection, exchange  # noqa: E402  (same directory)

RVI = "3"
CSE = "/~/id-in/cse-in"
# Certificate names = CNs. A registrant with a certificate chooses no id but its CN.
REGISTRANTS = ["reg-c", "reg-s", "reg-none", "Creg-chosen", "reg-csr", "reg-spoof"]

report = Report()


class Client:
    def __init__(self, base, tls_dir=None, cert=None):
        url = urllib.parse.urlsplit(base)
        self.host, self.port, self.tls = url.hostname, url.port, url.scheme == "https"
        self.context = None
        if self.tls:
            self.context = ssl.create_default_context(cafile=f"{tls_dir}/ca.pem")
            self.context.load_cert_chain(f"{tls_dir}/{cert}.pem", f"{tls_dir}/{cert}.key")
        self.n = 0

    def request(self, method, path, origin, ty=None, content=None):
        self.n += 1
        headers = {"X-M2M-RI": f"reg-{self.n}", "X-M2M-RVI": RVI, "Accept": "application/json"}
        if origin is not None:
            headers["X-M2M-Origin"] = origin
        if ty is not None:
            headers["Content-Type"] = f"application/json;ty={ty}"
        conn = connection(self.host, self.port, self.context)
        return exchange(conn, method, path, headers, content)


def ae(rn):
    return {"m2m:ae": {"rn": rn, "api": "Nacme", "rr": True, "srv": ["3"]}}


def main():
    acme_url, gw_url, tls_dir, prefix = sys.argv[1:5]
    acme = Client(acme_url)
    gw = {name: Client(gw_url, tls_dir, name) for name in REGISTRANTS}

    def at_acme(path):
        return acme.request("GET", f"/~/id-in/cse-in/{path}", "CAdmin")[:2]

    registered = {}
    # 1. Registration with C, S, no From, a chosen id: 2001 and an AE-ID; the AE's own requests.
    for name, origin in [("reg-c", "C"), ("reg-s", "S"), ("reg-none", None),
                         ("Creg-chosen", "Creg-chosen")]:
        rn = f"{prefix}{name}"
        status, rsc, body = gw[name].request("POST", CSE, origin, ty=2, content=ae(rn))
        aei = body.get("m2m:ae", {}).get("aei")
        label = "without From" if origin is None else f"as {origin!r}"
        if rsc == "2001" and aei:
            report(f"registration {label}: 2001, assigned {aei}", True)
        else:
            report(f"registration {label}", False, f"{status} {rsc} {body}")
            continue
        if origin is not None and len(origin) > 1:
            report(f"registration {label}: the chosen id is the AE-ID", aei == origin, aei)
        registered[name] = (aei, rn)
        cnt = {"m2m:cnt": {"rn": "data"}}
        got = gw[name].request("POST", f"{CSE}/{rn}", aei, ty=3, content=cnt)[:2]
        report(f"{aei} creates in its own AE right after registering", got[1] == "2001", got)
        got = gw[name].request("GET", f"{CSE}/{rn}", aei)[:2]
        report(f"{aei} retrieves its own AE", got[1] == "2000", got)

    # 2. A re-registration: ACME refuses it (the AE-ID exists) as it does directly.
    if "Creg-chosen" in registered:
        aei, _ = registered["Creg-chosen"]
        again = gw["Creg-chosen"].request("POST", CSE, aei, ty=2, content=ae(f"{prefix}again"))
        direct = acme.request("POST", CSE, aei, ty=2, content=ae(f"{prefix}again-direct"))
        report("re-registration refused by ACME, same answer as directly",
               again[:2] == direct[:2] and again[1] != "2001", f"gateway {again[:2]}, direct {direct[:2]}")

    # 3. A registration the policy refuses (a remoteCSE) never reaches ACME.
    csr = {"m2m:csr": {"rn": f"{prefix}mn", "csi": f"/{prefix}mn", "cb": f"/{prefix}mn/cse-mn",
                       "rr": True, "srv": ["3"], "dcse": [], "csz": ["application/json"]}}
    refused = gw["reg-csr"].request("POST", CSE, f"/{prefix}mn", ty=16, content=csr)
    report("remoteCSE registration refused by policy (403 4103)",
           refused[:2] == (403, "4103"), refused)
    report("... and it never reached ACME", at_acme(f"{prefix}mn")[1] == "4004", at_acme(f"{prefix}mn"))

    # 4. A registrant that is not a node yet doing anything but registering.
    cnt = {"m2m:cnt": {"rn": f"{prefix}sneaky"}}
    sneaky = gw["reg-csr"].request("POST", CSE, "C", ty=3, content=cnt)
    report("an unenrolled originator's plain create refused (403 4103)",
           sneaky[:2] == (403, "4103"), sneaky)
    report("... and it never reached ACME", at_acme(f"{prefix}sneaky")[1] == "4004",
           at_acme(f"{prefix}sneaky"))

    # 5. The certificate binding: a certificate registering under another device's name, another
    # certificate spoofing an assigned id, and the bound certificate acting as another id are
    # refused; the bound one as its id passes.
    squat = gw["reg-spoof"].request("POST", CSE, f"C{prefix}squat", ty=2, content=ae(f"{prefix}squat"))
    report("a certificate registering under another name refused (403 4103)",
           squat[:2] == (403, "4103"), squat)
    if "reg-c" in registered:
        aei, rn = registered["reg-c"]
        spoofed = gw["reg-spoof"].request("GET", f"{CSE}/{rn}", aei)
        report(f"another certificate as {aei} refused (403 4103)", spoofed[:2] == (403, "4103"), spoofed)
        other = gw["reg-c"].request("GET", CSE, "CAdmin")
        report(f"{aei}'s certificate as CAdmin refused (403 4103)", other[:2] == (403, "4103"), other)
        twice = gw["reg-c"].request("POST", CSE, "C", ty=2, content=ae(f"{prefix}twice"))
        report(f"{aei}'s certificate registering again refused (403 4103)",
               twice[:2] == (403, "4103"), twice)
        legit = gw["reg-c"].request("GET", f"{CSE}/{rn}", aei)
        report(f"{aei} with its own certificate passes", legit[1] == "2000", legit[:2])

    # 6. Deregistration: the AE deletes itself; from then on the id is unknown to the gateway.
    if "reg-s" in registered:
        aei, rn = registered["reg-s"]
        gone = gw["reg-s"].request("DELETE", f"{CSE}/{rn}", aei)
        report(f"{aei} deregisters (2002)", gone[1] == "2002", gone[:2])
        after = gw["reg-s"].request("GET", CSE, aei)
        report(f"{aei} is refused after deregistering (403 4103)", after[:2] == (403, "4103"), after)
        report("... its AE is gone at ACME", at_acme(rn)[1] == "4004", at_acme(rn))
        # The certificate is free again: it may register anew.
        again = gw["reg-s"].request("POST", CSE, "S", ty=2, content=ae(f"{rn}-2"))
        report("the deregistered certificate registers again (2001)", again[1] == "2001", again[:2])

    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
