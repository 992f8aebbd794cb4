#!/usr/bin/env python3
"""m2mguard audit log (docs/audit.md), verified independently of the gateway's Rust code.

Standard library plus the `cryptography` package (Ed25519), written from docs/audit.md (and
docs/feed.md for the JWS, base64url and kid rules) alone, so that the spec and the code cannot
drift apart unseen. The checkpoint JWS is checked by scripts/feed_verify.py's plain functions
(the same rules: one JWS verifier for both formats).

  audit_verify.py verify DIR --public-key FILE [--log NAME]
      checks the log in DIR as docs/audit.md "What verify checks" says: every segment in order,
      the chain, every checkpoint (under the key in FILE: 64 hex digits; with --log, the name
      its checkpoints carry), the anchor, retention. Prints a status line, each problem with its
      segment, line number and seq, then the notes. Exit 0: no problem; 2: one or more; 1: the
      log or the key cannot be read
  audit_verify.py vectors DIR
      DIR is tests/vectors/audit: checks the known answers (a line's hash, a checkpoint's
      signature and payload), then applies each case's edits to a copy of DIR/log and checks
      that the outcome (ok or not, and the places of the problems) is the expected one. One
      line per case, then "ok: N cases"; exit 1 at the first mismatch

Format (docs/audit.md):
  segment     DIR/<seq of its first line, 20 decimal digits>.jsonl, lines ended by "\\n"
  line        a JSON object: seq (1, 2, ...), prev (hash of the line before; 64 zeros for seq 1),
              at, kind (request|event|gap|dropped|checkpoint), then the kind's members
  hash        lowercase hex SHA-256 of the line's bytes without its "\\n"
  checkpoint  {"jws": compact JWS, typ m2mguard-audit-checkpoint, over {"log","count","head","at"}}
              with count = seq - 1, head = prev, at = the line's at
  anchor.json the newest checkpoint line, byte for byte as in the log
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from feed_verify import HASH, INT, STR, Obj, Refused, hex32, kid, parse_payload, verify_jws  # noqa: E402

TYP = "m2mguard-audit-checkpoint"
ZERO_HASH = "0" * 64
SEGMENT = re.compile(r"[0-9]{20}\.jsonl")
ANCHOR = "anchor.json"
KINDS = ("request", "event", "gap", "dropped", "checkpoint")
CHECKPOINT = Obj(("log", STR), ("count", INT), ("head", HASH), ("at", STR))
JWS_MAX = 64 * 1024   # docs/audit.md sets no limit; a checkpoint is a few hundred bytes


def line_hash(data):
    return hashlib.sha256(data).hexdigest()


def parse_line(data):
    """A line's JSON object with seq (integer), prev, at, kind (strings), or None."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    if type(obj.get("seq")) is not int or obj["seq"] < 1:
        return None
    if not all(isinstance(obj.get(k), str) for k in ("prev", "at", "kind")):
        return None
    return obj


def checkpoint(obj, public_raw):
    """The payload a checkpoint line's JWS signs under the key (raises Refused)."""
    jws = obj.get("jws")
    if not isinstance(jws, str):
        raise Refused("checkpoint without a jws string")
    payload = verify_jws(jws, TYP, public_raw, JWS_MAX)
    return parse_payload(payload, lambda _: CHECKPOINT, "checkpoint payload")


class Verifier:
    def __init__(self, public_raw, log):
        self.public_raw, self.log = public_raw, log
        self.problems = []            # ((segment, line, seq) or None, what)
        self.lines = self.checkpoints = self.gaps = self.lost = self.torn = 0
        self.first = self.last = self.pinned = None
        self.prev_hash = self.prev_seq = None
        self.first_prev = None        # the first line's prev (retention head)
        self.retention = None         # the newest audit.retention line
        self.by_seq = {}              # seq -> (bytes, place) of each checkpoint line, for the anchor
        self.tail = []                # the last two lines' (kind, event)

    def problem(self, place, what):
        self.problems.append((place, what))

    def segment(self, name, data, newest):
        if not data:
            self.problem((name, 0, None), "an empty segment")
            return
        pieces = data.split(b"\n")
        torn = pieces.pop()           # b"" when the segment ends with "\n"
        for n, piece in enumerate(pieces, 1):
            if n == 1 and self.prev_seq is not None and int(name[:20]) != self.prev_seq + 1:
                self.problem((name, 1, None), f"segment {name} is named for seq {int(name[:20])}, "
                                              f"the segment before ended at seq {self.prev_seq}")
            self.line(name, n, piece)
        if torn:
            if newest:
                self.torn = len(torn)
            else:
                self.problem((name, len(pieces) + 1, None),
                             f"a torn line ({len(torn)} bytes without a final \\n) before the newest segment")

    def line(self, seg, n, data):
        obj = parse_line(data)
        seq = obj["seq"] if obj else None
        place = (seg, n, seq)
        very_first = self.lines == 0
        self.lines += 1
        h = line_hash(data)
        if obj is None:
            self.problem(place, "not a JSON object with seq (integer), prev, at, kind (strings)")
            # counted as the line expected there: the next line is compared with its seq + 1
            self.prev_hash = h
            self.prev_seq = None if self.prev_seq is None else self.prev_seq + 1
            return
        if very_first:
            self.first, self.first_prev = seq, obj["prev"]
            if int(seg[:20]) != seq:
                self.problem(place, f"segment {seg} is named for seq {int(seg[:20])}, its first line has seq {seq}")
            if seq == 1 and obj["prev"] != ZERO_HASH:
                self.problem(place, "line 1's prev is not 64 zeros")
        if self.prev_seq is not None and seq != self.prev_seq + 1:
            self.problem(place, f"seq {seq} follows seq {self.prev_seq} (lines removed, inserted or reordered)")
        if self.prev_hash is not None and obj["prev"] != self.prev_hash:
            self.problem(place, "prev is not the hash of the line before (a line before was changed, "
                                "or lines were removed, inserted or reordered)")
        self.prev_hash, self.prev_seq, self.last = h, seq, seq
        self.kind(place, obj, data)
        self.tail = (self.tail + [(obj["kind"], obj.get("event"))])[-2:]

    def kind(self, place, obj, data):
        kind = obj["kind"]
        if kind not in KINDS:
            self.problem(place, f"unknown kind {kind!r}")
        elif kind == "event":
            event = obj.get("event")
            if not isinstance(event, str):
                self.problem(place, "an event line without event")
            elif event == "audit.retention":
                self.retention = obj
            elif event == "audit.open" and obj.get("missing") is not None:
                self.problem(place, f"audit.open found lines missing: {json.dumps(obj.get('missing'))}")
        elif kind == "gap":
            self.gaps += 1
            self.lost += obj.get("lost") if type(obj.get("lost")) is int else 0
        elif kind == "checkpoint":
            self.checkpoints += 1
            self.by_seq[obj["seq"]] = (data, place)
            self.check_checkpoint(place, obj)

    def check_checkpoint(self, place, obj):
        try:
            p = checkpoint(obj, self.public_raw)
        except Refused as e:
            self.problem(place, f"checkpoint does not verify: {e}")
            return
        wrong = [f"{k} {p[k]!r}, the line's {want!r}" for k, want in
                 (("count", obj["seq"] - 1), ("head", obj["prev"]), ("at", obj["at"])) if p[k] != want]
        if self.log is not None and p["log"] != self.log:
            wrong.append(f"log {p['log']!r}, expected {self.log!r}")
        if wrong:
            self.problem(place, "checkpoint payload differs from its line: " + "; ".join(wrong))
        else:
            self.pinned = obj["seq"]

    def finish(self, anchor):
        if self.first is not None and self.first > 1:
            r = self.retention
            # A retention line counts only under a verified checkpoint: anyone could append one.
            covered = r is not None and self.pinned is not None and r["seq"] < self.pinned
            if not covered or r.get("removed_through") != self.first - 1 or r.get("head") != self.first_prev:
                self.problem(None, f"the log starts at seq {self.first}, but no audit.retention line removed "
                                   f"lines 1..{self.first - 1} with head {self.first_prev}")
        if anchor is None:
            if self.checkpoints:
                self.problem(None, f"no {ANCHOR}, while the log has checkpoints")
            return
        obj = parse_line(anchor.rstrip(b"\n")) if anchor.endswith(b"\n") else None
        if obj is None or obj["kind"] != "checkpoint":
            self.problem(None, f"{ANCHOR} is not a checkpoint line ended by \\n")
            return
        a = obj["seq"]
        if self.last is None or a > self.last:
            self.problem(None, f"truncated: {ANCHOR} holds the checkpoint at seq {a}, the log ends at seq {self.last}")
        elif self.by_seq.get(a, (None,))[0] != anchor[:-1]:
            self.problem(self.by_seq.get(a, (None, None))[1], f"line {a} differs from the anchor ({ANCHOR})")


def verify(dir_, public_raw, log):
    """The Verifier after reading the log in dir_ (OSError when it cannot be read)."""
    names = sorted(n for n in os.listdir(dir_) if SEGMENT.fullmatch(n))
    v = Verifier(public_raw, log)
    if not names:
        v.problem(None, f"{dir_} holds no segments")
    for i, name in enumerate(names):
        with open(os.path.join(dir_, name), "rb") as f:
            data = f.read()
        v.segment(name, data, i == len(names) - 1)
    try:
        with open(os.path.join(dir_, ANCHOR), "rb") as f:
            anchor = f.read()
    except FileNotFoundError:
        anchor = None
    v.finish(anchor)
    return v


def summary(dir_, v):
    closed = len(v.tail) == 2 and v.tail[0] == ("event", "audit.close") and v.tail[1][0] == "checkpoint"
    span = f"seq {v.first}..{v.last}" if v.first is not None else "no lines"
    out = [f"{dir_}: {'PROBLEMS FOUND' if v.problems else 'verified'} — {v.lines} lines ({span}), "
           f"{v.checkpoints} checkpoints, {'closed' if closed else 'open or ended uncleanly'}"]
    for place, what in v.problems:
        at = "" if place is None else f"{place[0]} line {place[1]}" + (f" (seq {place[2]})" if place[2] else "") + ": "
        out.append(f"  problem: {at}{what}")
    if v.gaps:
        out.append(f"  note: {v.gaps} gap line(s): {v.lost} records never reached the log")
    if v.torn:
        out.append(f"  note: a torn last line of {v.torn} bytes (a crash mid-write; the writer cuts it on open)")
    if v.pinned is None:
        out.append("  note: no checkpoint verified: the chain alone covers the log")
    elif v.last is not None and v.pinned < v.last:
        out.append(f"  note: lines {v.pinned + 1}..{v.last} follow the newest checkpoint: covered by the chain only")
    return "\n".join(out)


def read_key(path):
    with open(path, encoding="ascii") as f:
        return hex32(f.read().strip(), path)


# --- vectors ------------------------------------------------------------------------------------

def lines_of(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8").split("\n")[:-1]


def write_lines(path, lines):
    with open(path, "wb") as f:
        f.write(("\n".join(lines) + "\n").encode("utf-8"))


def apply(dir_, edit):
    """One edit of a case (docs/audit.md "Test vectors"); lines count from 1."""
    path = os.path.join(dir_, edit["file"])
    op, n = edit["op"], edit.get("line", 1) - 1
    if op == "remove":
        os.remove(path)
    elif op in ("write", "append"):
        with open(path, "wb" if op == "write" else "ab") as f:
            f.write(edit["text"].encode("utf-8"))
    else:
        lines = lines_of(path)
        if op == "replace_line":
            lines[n] = edit["text"]
        elif op == "delete_line":
            del lines[n]
        elif op == "insert_line":
            lines.insert(n, edit["text"])
        elif op == "swap_lines":
            lines[n], lines[n + 1] = lines[n + 1], lines[n]
        elif op == "keep_lines":
            lines = lines[:edit["keep"]]
        elif op == "rechain":
            for i in range(n + 1, len(lines)):
                at = lines[i].index('"prev":"') + 8
                lines[i] = lines[i][:at] + line_hash(lines[i - 1].encode("utf-8")) + lines[i][at + 64:]
        else:
            raise Refused(f"unknown edit {op!r}")
        write_lines(path, lines)


def check_known_answers(k):
    text = k["line"]["text"].encode("utf-8")
    if line_hash(text) != k["line"]["sha256"]:
        raise Refused(f"known answer: the line hashes to {line_hash(text)}, expected {k['line']['sha256']}")
    cp = k["checkpoint"]
    public_raw = hex32(cp["public_key"], "known answer public_key")
    if kid(public_raw) != cp["kid"]:
        raise Refused(f"known answer: kid {kid(public_raw)}, expected {cp['kid']}")
    payload = checkpoint(json.loads(cp["line"]), public_raw)
    if payload != cp["payload"]:
        raise Refused(f"known answer: the checkpoint signs {payload}, expected {cp['payload']}")
    print(f"known answers: line hash {k['line']['sha256'][:16]}…, checkpoint count {payload['count']} kid {cp['kid']}")


def check_vectors(root):
    with open(os.path.join(root, "expected.json"), encoding="utf-8") as f:
        expected = json.load(f)
    check_known_answers(expected["known_answers"])
    public_raw = hex32(expected["public_key"], "public_key")
    with tempfile.TemporaryDirectory() as work:
        for case in expected["cases"]:
            dir_ = os.path.join(work, case["name"])
            shutil.copytree(os.path.join(root, "log"), dir_)
            for edit in case["edits"]:
                apply(dir_, edit)
            v = verify(dir_, public_raw, expected["log"])
            got = sorted({p for p, _ in v.problems}, key=repr)
            want = sorted({None if p["segment"] is None else (p["segment"], p["line"], p["seq"])
                           for p in case["problems"]}, key=repr)
            if (not v.problems) != case["ok"] or got != want:
                raise Refused(f"case {case['name']}: expected ok={case['ok']} at {want}, got ok={not v.problems} "
                              f"at {got}:\n{summary(dir_, v)}")
            print(f"{case['name']}: {'ok' if case['ok'] else f'{len(want)} place(s) found'}")
    print(f"ok: {len(expected['cases'])} cases")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify")
    v.add_argument("dir")
    v.add_argument("--public-key", required=True, help="file: the checkpoint key's public half, 64 hex digits")
    v.add_argument("--log", help="the log's name its checkpoints must carry (default: not checked)")
    sub.add_parser("vectors").add_argument("dir")
    a = ap.parse_args()
    try:
        if a.cmd == "vectors":
            try:
                check_vectors(a.dir)
            except (KeyError, TypeError, IndexError, ValueError) as e:
                sys.exit(f"FAIL {a.dir}: not the layout of the vectors ({type(e).__name__}: {e})")
            return
        result = verify(a.dir, read_key(a.public_key), a.log)
    except (Refused, OSError) as e:
        sys.exit(f"FAIL {e}")
    print(summary(a.dir, result))
    sys.exit(2 if result.problems else 0)


if __name__ == "__main__":
    main()
