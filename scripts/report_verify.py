#!/usr/bin/env python3
"""m2mguard misbehaviour reports (docs/reports.md), verified independently of the Rust code.

Standard library plus the `cryptography` package (Ed25519), written from docs/reports.md (and
docs/feed.md for the JWS, base64url and kid rules) alone, so that the spec and the code cannot
drift apart unseen. The JWS itself is checked by scripts/feed_verify.py's plain functions (one
JWS verifier for every format).

  report_verify.py vectors FILE
      FILE is tests/vectors/reports.json: checks the key and its kid, that every report verifies
      under it with exactly its payload (and that signing the payload again gives the same
      bytes), and that every `refused` object is refused. One line per vector, then
      "ok: N checks"; exit 1 at the first mismatch
  report_verify.py report --public-key HEX FILE
      one report as a gateway POSTs it (its compact JWS, a trailing newline allowed), under the
      gateway's Ed25519 public key (64 hex digits). Prints the payload; exit 1 if refused

Format (docs/reports.md "The report"):
  report    compact JWS, typ m2mguard-report, at most 8 KiB, over the compact JSON of
            {id, gateway, node, rule, from, to, counts, reasons, at} in that order:
            id 32 lowercase hex; gateway and rule 1-64 of A-Za-z0-9._-; node 1-256 bytes
            without control characters; from, to, at YYYY-MM-DDTHH:MM:SS.mmmZ with from <= to;
            counts {stage name: integer >= 1}, 1 or more, in byte order of the names;
            reasons 1-5 distinct reason names
"""
import argparse
import json
import os
import re
import sys
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from feed_verify import (INT, NODE_ID, Arr, Leaf, Map, Obj, Refused, b64d, b64e,  # noqa: E402
                         ed25519_public, hex32, kid, need, parse_payload, pattern, verify_jws)

TYP = "m2mguard-report"
LIMIT = 8 * 1024
MAX_REASONS = 5

STAGES = ["identity", "gateway", "status", "check_value", "replay", "token", "plausibility",
          "policy", "audit", "target"]
REASONS = """
certificate_mismatch certificate_required certificate_bound unbound session_claims
gateway_deactivated gateway_removed repository_stale audit_unavailable
inactive unknown_originator registrant_only repository
check_value_required check_value_malformed unknown_key key_not_enrolled mac_not_base64
check_value_mismatch sequence_unavailable
timestamp_missing timestamp_unreadable timestamp_stale timestamp_ahead request_id_seen
replay_node_full replay_full no_sequence_repository sequence_refused sequence_bound
token_ids_unresolvable token_required too_many_tokens token_invalid
implausible unevaluable
no_policy_permits forbidden policy_evaluation policy_request
unresolved unresolved_at_guard
""".split()


def is_time(v):
    if not (isinstance(v, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", v)):
        return False
    try:
        datetime.strptime(v, "%Y-%m-%dT%H:%M:%S.%fZ")
        return True
    except ValueError:
        return False


NAME = Leaf("1-64 of A-Za-z0-9._-", pattern(r"[A-Za-z0-9._-]{1,64}"))
TIME = Leaf("YYYY-MM-DDTHH:MM:SS.mmmZ", is_time)
STAGE = Leaf("a stage name", lambda v: v in STAGES)
COUNT = Leaf("an integer >= 1", lambda v: INT.test(v) and v >= 1)
REASON = Leaf("a reason name of the vocabulary", lambda v: v in REASONS)
REPORT = Obj(("id", Leaf("32 lowercase hex digits", pattern(r"[0-9a-f]{32}"))),
             ("gateway", NAME), ("node", NODE_ID), ("rule", NAME), ("from", TIME), ("to", TIME),
             ("counts", Map(STAGE, COUNT)), ("reasons", Arr(REASON)), ("at", TIME))


def verify_report(text, public_raw):
    payload = verify_jws(text, TYP, public_raw, LIMIT)
    report = parse_payload(payload, lambda _: REPORT, "report")
    need(report["from"] <= report["to"], "report: from is after to")
    need(len(report["counts"]) >= 1, "report: counts is empty")
    reasons = report["reasons"]
    need(1 <= len(reasons) <= MAX_REASONS, f"report: {len(reasons)} reasons, expected 1 to {MAX_REASONS}")
    need(len(set(reasons)) == len(reasons), "report: a reason twice")
    return report


def sign(seed, payload_bytes, public_raw):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    header = '{"alg":"EdDSA","kid":"%s","typ":"%s"}' % (kid(public_raw), TYP)
    signing_input = b64e(header.encode()) + "." + b64e(payload_bytes)
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(signing_input.encode("ascii"))
    return signing_input + "." + b64e(signature)


def check_vectors(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    checks = 0
    seed = hex32(doc["keys"]["sign_seed"], "sign_seed")
    public = ed25519_public(seed)
    need(public.hex() == doc["keys"]["sign_public"], "keys: sign_public is not the seed's")
    need(kid(public) == doc["keys"]["kid"], "keys: kid is not the public key's")
    checks += 2
    for v in doc["reports"]:
        report = verify_report(v["compact"], public)
        need(report == v["payload"], f"{v['name']}: payload differs")
        payload = v["compact"].split(".")[1]
        need(sign(seed, b64d(payload, "payload"), public) == v["compact"],
             f"{v['name']}: signing the payload again gives other bytes")
        print(f"report {v['name']!r}: ok")
        checks += 3
    for v in doc["refused"]:
        try:
            verify_report(v["compact"], public)
        except Refused as e:
            print(f"refused {v['name']!r}: {e}")
            checks += 1
            continue
        raise Refused(f"{v['name']}: accepted, expected refused")
    print(f"ok: {checks} checks")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    vectors = sub.add_parser("vectors")
    vectors.add_argument("file")
    one = sub.add_parser("report")
    one.add_argument("--public-key", required=True)
    one.add_argument("file")
    args = parser.parse_args()
    try:
        if args.command == "vectors":
            check_vectors(args.file)
        else:
            with open(args.file, encoding="ascii") as f:
                text = f.read()
            text = text[:-1] if text.endswith("\n") else text
            print(json.dumps(verify_report(text, hex32(args.public_key, "--public-key"))))
    except Refused as e:
        print(f"refused: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
