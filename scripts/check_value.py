#!/usr/bin/env python3
"""m2mguard check values (canonical form v2), independently of the gateway's Rust code.

Standard library only, so that device firmware authors can read and port it.

  check_value.py sign --key-file K --key-id ID --seq N --op 2 --to /id-in/cse-in/x \\
                      --fr Cmeter-01 --rqi r1 [--ot 20261128T120000] [--ty 4] [--rqet T]
                      [--rvi 4] [--query 'rcn=1&lbl=a'] [--content-file F]
      prints the aus value: <key id>.<seq>.<base64url HMAC-SHA256, unpadded>
  check_value.py vectors FILE
      recomputes every vector in FILE (canonical bytes and aus); exit 1 on any mismatch
  check_value.py make-vectors
      prints the vector file (used once to create tests/vectors/check_value.json)

Canonical form v2:
  "m2mguard-cv2" || f(op) || f(to) || f(fr) || f(rqi) || f(ot) || f(ty) || f(rqet) || f(rvi)
                 || f(query) || f(key id) || f(seq) || SHA-256(content)
  f(x) = 4-byte big-endian length of x's UTF-8 bytes || those bytes
  op, ty, seq in decimal; ot, ty, rqet, rvi, query empty when absent; query = HTTP query string
  as sent (no '?'), CoAP Uri-Query options joined by '&', MQTT: the primitive's other members
  as compact JSON in the order sent; key id [A-Za-z0-9_-]{1,64}; seq >= 1.
"""
import argparse
import base64
import hashlib
import hmac
import json
import struct
import sys

DOMAIN = b"m2mguard-cv2"


def field(text):
    data = text.encode("utf-8")
    return struct.pack(">I", len(data)) + data


def canonical(op, to, fr, rqi, ot, ty, key_id, seq, content, rqet=None, rvi=None, query=""):
    parts = [str(op), to, fr, rqi, ot or "", "" if ty is None else str(ty), rqet or "",
             rvi or "", query or "", key_id, str(seq)]
    return DOMAIN + b"".join(field(p) for p in parts) + hashlib.sha256(content).digest()


def aus(key, key_id, seq, canonical_bytes):
    mac = hmac.new(key, canonical_bytes, hashlib.sha256).digest()
    return "%s.%d.%s" % (key_id, seq, base64.urlsafe_b64encode(mac).rstrip(b"=").decode())


def read_key(path):
    text = open(path).read().strip()
    try:
        return bytes.fromhex(text)
    except ValueError:
        return base64.b64decode(text + "=" * (-len(text) % 4))


def vector_inputs(v):
    return (v["op"], v["to"], v["fr"], v["rqi"], v.get("ot"), v.get("ty"), v["key_id"],
            v["seq"], bytes.fromhex(v["content_hex"]), v.get("rqet"), v.get("rvi"),
            v.get("query", ""))


def check_vectors(path):
    failed = 0
    for v in json.load(open(path))["vectors"]:
        c = canonical(*vector_inputs(v))
        got = aus(bytes.fromhex(v["key_hex"]), v["key_id"], v["seq"], c)
        if c.hex() != v["canonical_hex"] or got != v["aus"]:
            print("FAIL %s: canonical or aus differs (aus %s, expected %s)" % (v["name"], got, v["aus"]))
            failed += 1
        else:
            print("ok  %s" % v["name"])
    return failed


def make_vectors():
    key = bytes(range(32))
    base = dict(op=2, to="/id-in/cse-in/meter-01/data/la", fr="Cmeter-01", rqi="r-0001",
                ot="20261128T120000", ty=None, rqet=None, rvi="4", query="", key_id="meter-01-k1",
                seq=1, content_hex="")
    cases = [
        ("retrieve, no content", {}),
        ("create with ty and JSON content",
         dict(op=1, to="/id-in/cse-in/meter-01/data", ty=4, rqi="r-0002", seq=2,
              content_hex=b'{"m2m:cin":{"con":"21.5"}}'.hex())),
        ("no ot, no rvi, large sequence number",
         dict(ot=None, rvi=None, seq=18446744073709551615, rqi="r-0003")),
        ("discovery query and request expiry",
         dict(query="fu=1&lbl=meter&rcn=4", rqet="20261128T120500", rqi="r-0005", seq=5)),
        ("non-ASCII target and originator", dict(to="/id-in/cse-in/z\u00e4hler", fr="Cz\u00e4hler", rqi="r-0004", seq=3)),
        ("field boundary: fr 'ab' rqi 'c'", dict(fr="ab", rqi="c", seq=4)),
        ("field boundary: fr 'a' rqi 'bc'", dict(fr="a", rqi="bc", seq=4)),
    ]
    out = []
    for name, change in cases:
        v = dict(base, **change)
        v["name"] = name
        v["key_hex"] = key.hex()
        c = canonical(*vector_inputs(v))
        v["canonical_hex"] = c.hex()
        v["aus"] = aus(key, v["key_id"], v["seq"], c)
        out.append(v)
    print(json.dumps({"version": "m2mguard-cv2", "vectors": out}, indent=2, ensure_ascii=False))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sign")
    s.add_argument("--key-file", required=True)
    s.add_argument("--key-id", required=True)
    s.add_argument("--seq", type=int, required=True)
    s.add_argument("--op", type=int, required=True)
    s.add_argument("--to", required=True)
    s.add_argument("--fr", required=True)
    s.add_argument("--rqi", required=True)
    s.add_argument("--ot")
    s.add_argument("--ty", type=int)
    s.add_argument("--rqet")
    s.add_argument("--rvi")
    s.add_argument("--query", default="")
    s.add_argument("--content-file")
    v = sub.add_parser("vectors")
    v.add_argument("file")
    sub.add_parser("make-vectors")
    a = ap.parse_args()
    if a.cmd == "sign":
        content = open(a.content_file, "rb").read() if a.content_file else b""
        c = canonical(a.op, a.to, a.fr, a.rqi, a.ot, a.ty, a.key_id, a.seq, content,
                      a.rqet, a.rvi, a.query)
        print(aus(read_key(a.key_file), a.key_id, a.seq, c))
    elif a.cmd == "vectors":
        failed = check_vectors(a.file)
        sys.exit(1 if failed else 0)
    else:
        make_vectors()


if __name__ == "__main__":
    main()
