#!/usr/bin/env python3
"""m2mguard status feed (docs/feed.md), verified independently of the gateway's Rust code.

Standard library plus the `cryptography` package (Ed25519, X25519, AES key wrap, AES-GCM),
written from docs/feed.md alone so that the spec and the code cannot drift apart unseen. It
checks what a producer must write, which is more than a gateway refuses: a header, payload or
sealed-secret header not in compact form (member order, white space, escapes) fails here.

  feed_verify.py vectors FILE
      checks every vector of FILE (tests/vectors/feed.json): keys and kids; the sealed secret
      (opened, and re-sealed byte for byte); records, head, snapshot and ack (signature, payload,
      compact form, hash, chain, members); that the `refused` entries are refused as records.
      One line per group, then "ok: N checks"; exit 1 at the first mismatch
  feed_verify.py records --feed-key HEX --feed ID [--after-seq N [--after-hash H]] FILE
      a page of records as GET /v1/feed/records serves it (one compact JWS a line, each line
      ending in "\\n"), continuing the chain after (N, H): seq 0 and 64 zeros unless given; with
      --after-seq alone the first record's `prev` is taken on trust. Prints "ok: records A..B,
      last hash H"; exit 1 naming the first bad record
  feed_verify.py head --feed-key HEX --feed ID [--now T] FILE
      a head as GET /v1/feed/head serves it, current at T (Unix seconds, default now): not
      expired, not signed more than 60 s in the future
  HEX is the feed's Ed25519 public key, 64 hex digits.

Format:
  kid(key)      first 16 hex digits (lowercase) of SHA-256(raw 32-byte public key)
  signed object B64(header) "." B64(payload) "." B64(Ed25519 signature over the ASCII of the
                first two parts); B64 = base64url, no padding, zero trailing bits;
                header {"alg":"EdDSA","kid":"<signer kid>","typ":"m2mguard-<type>"}: records,
                heads and snapshots signed by the feed key, acks by the gateway signing key
  payload       compact JSON: members in the order below, no white space, integers 0..2^64-1
                in decimal, strings escaping only `"` `\\` (as \\" \\\\) and U+0000-001F (\\b \\f
                \\n \\r \\t, else \\u00xx), UTF-8; unknown, missing or mistyped members refused
  record        feed, seq (1, 2, ...), prev (hash of seq - 1; 64 zeros for seq 1), at, aud
                (["*"] or 1-64 gateway ids), kind, body; hash = hex SHA-256(compact JWS)
    node.put      id, kind (ae|cse), groups [str], status (active|suspended|deactivated|
                  revoked), registrar (str|null)
    key.put       id, node, insert (bool), sealed {gateway id: sealed secret} (byte order)
    gateway.put   id, status (active|deactivated)
    node.remove, key.remove: id; token.revoke: jti
    issuer.put    iss, alg (EdDSA), key (64 hex, Ed25519 public), max_uses (null|1..2^32-1)
    issuer.remove iss
  head          feed, seq, hash, at, valid_until
  snapshot      feed, gateway, seq, hash, at, status, nodes [node.put body], keys [key.put
                body, sealed holding this gateway only], revoked [jti], issuers [issuer.put
                body]
  ack           feed, gateway, seq, hash, at, error (str|null)
  limits        record 64 KiB, head and ack 4 KiB, snapshot 256 MiB (compact form)
  sealed secret B64(header) "." B64(wrapped CEK, 40 bytes) "." B64(IV, 12) "." B64(ciphertext)
                "." B64(tag, 16); header {"alg":"ECDH-ES+A256KW","enc":"A256GCM","kid":"<sealing
                kid>","epk":{"kty":"OKP","crv":"X25519","x":"<B64(ephemeral public key)>"}};
                Z = X25519(ephemeral, gateway), not all zero; KEK = SHA-256(00000001 || Z ||
                0000000E || "ECDH-ES+A256KW" || 00000000 || 00000000 || 00000100); wrapped =
                AES-KW(KEK, CEK) (RFC 3394); ciphertext || tag = AES-256-GCM(CEK, IV, secret,
                AAD = ASCII(B64(header))); a secret is at least 16 bytes
"""
import argparse
import base64
import hashlib
import json
import re
import sys
import time
import unicodedata

try:
    from cryptography.exceptions import InvalidSignature, InvalidTag
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
except ImportError:
    sys.exit("feed_verify.py needs the Python package `cryptography` (pip install cryptography)")

ZERO_HASH = "0" * 64
RECORD_MAX, HEAD_MAX, ACK_MAX, SNAPSHOT_MAX = 64 * 1024, 4 * 1024, 4 * 1024, 256 * 1024 * 1024
PAGE_MAX = 1000
FUTURE_S = 60
U64_MAX = 2 ** 64 - 1
JWE_ALG, JWE_ENC = "ECDH-ES+A256KW", "A256GCM"


class Refused(Exception):
    """What a verifier refuses, and why."""


def need(cond, why):
    if not cond:
        raise Refused(why)


# --- encodings ----------------------------------------------------------------------------------

B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64e(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text, what):
    """base64url without padding, strictly: alphabet, length, and zero trailing bits (one
    encoding per byte string, since a record's hash is over its encoded form)."""
    need(B64URL.fullmatch(text) is not None, f"{what}: not base64url without padding")
    need(len(text) % 4 != 1, f"{what}: base64url of impossible length {len(text)}")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    need(b64e(data) == text, f"{what}: base64url with non-zero trailing bits")
    return data


def parse_json(data, what):
    """A JSON document, strictly: UTF-8, no duplicate members, no non-integer numbers."""
    def members(pairs):
        obj = {}
        for k, v in pairs:
            need(k not in obj, f"{what}: member {k!r} twice")
            obj[k] = v
        return obj

    def no_float(s):
        raise Refused(f"{what}: {s} is not an integer")

    try:
        text = data.decode("utf-8")
        return json.loads(text, object_pairs_hook=members, parse_float=no_float,
                          parse_constant=no_float)
    except UnicodeDecodeError:
        raise Refused(f"{what}: not UTF-8") from None
    except ValueError as e:
        raise Refused(f"{what}: not JSON ({e})") from None
    except RecursionError:
        raise Refused(f"{what}: nested too deeply") from None


ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def quote(s):
    return '"' + "".join(ESCAPES.get(c) or ("\\u%04x" % ord(c) if ord(c) < 0x20 else c)
                         for c in s) + '"'


def compact(value, shape):
    """The compact JSON of a value already checked against shape, members in the shape's order."""
    if isinstance(shape, Obj):
        return "{" + ",".join(quote(name) + ":" + compact(value[name], sub)
                              for name, sub in shape.members) + "}"
    if isinstance(shape, Map):
        return "{" + ",".join(quote(k) + ":" + compact(value[k], shape.values)
                              for k in sorted(value, key=lambda k: k.encode())) + "}"
    if isinstance(shape, Arr):
        return "[" + ",".join(compact(v, shape.items) for v in value) + "]"
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return quote(value)


# --- shapes: what each object holds, in order ---------------------------------------------------

class Obj:
    def __init__(self, *members):
        self.members = members


class Arr:
    def __init__(self, items):
        self.items = items


class Map:
    """An object with free member names (gateway ids), written in byte order of the names."""
    def __init__(self, names, values):
        self.names, self.values = names, values


class Leaf:
    def __init__(self, what, test):
        self.what, self.test = what, test


def check(value, shape, path):
    if isinstance(shape, Obj):
        need(isinstance(value, dict), f"{path}: expected an object")
        names = [n for n, _ in shape.members]
        unknown = [k for k in value if k not in names]
        need(not unknown, f"{path}: unknown member {', '.join(unknown)}")
        missing = [n for n in names if n not in value]
        need(not missing, f"{path}: missing member {', '.join(missing)}")
        for name, sub in shape.members:
            check(value[name], sub, f"{path}.{name}")
    elif isinstance(shape, Map):
        need(isinstance(value, dict), f"{path}: expected an object")
        for k, v in value.items():
            check(k, shape.names, f"{path} member name {k!r}")
            check(v, shape.values, f"{path}.{k}")
        need(list(value) == sorted(value, key=lambda k: k.encode()),
             f"{path}: members not in byte order of their names")
    elif isinstance(shape, Arr):
        need(isinstance(value, list), f"{path}: expected an array")
        for i, v in enumerate(value):
            check(v, shape.items, f"{path}[{i}]")
    else:
        need(shape.test(value), f"{path}: expected {shape.what}, got {json.dumps(value)[:80]}")


def is_str(v):
    return isinstance(v, str)


def pattern(regex):
    r = re.compile(regex)
    return lambda v: is_str(v) and r.fullmatch(v) is not None


def one_of(*names):
    return Leaf(" or ".join(json.dumps(n) for n in names), lambda v: is_str(v) and v in names)


def is_node_id(v):
    # configuration's rule: 1 to 256 bytes of UTF-8, no control characters
    return (is_str(v) and 1 <= len(v.encode("utf-8", "surrogatepass")) <= 256
            and not any(unicodedata.category(c) == "Cc" for c in v))


INT = Leaf("an integer 0..2^64-1", lambda v: type(v) is int and 0 <= v <= U64_MAX)
STR = Leaf("a string", is_str)
BOOL = Leaf("a boolean", lambda v: type(v) is bool)
STR_OR_NULL = Leaf("a string or null", lambda v: v is None or is_str(v))
HASH = Leaf("64 lowercase hex digits", pattern(r"[0-9a-f]{64}"))
FEED_ID = Leaf("a feed id (1-64 of A-Za-z0-9._-)", pattern(r"[A-Za-z0-9._-]{1,64}"))
NODE_ID = Leaf("a node id (1-256 bytes, no control characters)", is_node_id)
KEY_ID = Leaf("a key id ([A-Za-z0-9_-]{1,64})", pattern(r"[A-Za-z0-9_-]{1,64}"))
GATEWAY_ID = Leaf("a gateway id (a non-empty string)", lambda v: is_str(v) and v != "")
AUD_ID = Leaf("a gateway id (not \"*\", which stands alone)", lambda v: is_str(v) and v not in ("", "*"))
SEALED = Leaf("a sealed secret (JWE compact, five parts)", is_str)   # opened or checked apart

NODE = Obj(("id", NODE_ID), ("kind", one_of("ae", "cse")), ("groups", Arr(STR)),
           ("status", one_of("active", "suspended", "deactivated", "revoked")),
           ("registrar", STR_OR_NULL))
KEY = Obj(("id", KEY_ID), ("node", NODE_ID), ("insert", BOOL), ("sealed", Map(GATEWAY_ID, SEALED)))
ISSUER = Obj(("iss", NODE_ID), ("alg", one_of("EdDSA")), ("key", HASH),
             ("max_uses", Leaf("null or 1..2^32-1", lambda v: v is None or (type(v) is int and 1 <= v <= 2**32 - 1))))
BODIES = {
    "node.put": NODE,
    "node.remove": Obj(("id", NODE_ID)),
    "key.put": KEY,
    "key.remove": Obj(("id", KEY_ID)),
    "token.revoke": Obj(("jti", STR)),
    "gateway.put": Obj(("id", GATEWAY_ID), ("status", one_of("active", "deactivated", "removed"))),
    "issuer.put": ISSUER,
    "issuer.remove": Obj(("iss", NODE_ID)),
}
RECORD = Obj(("feed", FEED_ID), ("seq", INT), ("prev", HASH), ("at", INT), ("aud", Arr(STR)),
             ("kind", one_of(*BODIES)), ("body", Obj()))    # body: by kind, below
HEAD = Obj(("feed", FEED_ID), ("seq", INT), ("hash", HASH), ("at", INT), ("valid_until", INT))
SNAPSHOT = Obj(("feed", FEED_ID), ("gateway", GATEWAY_ID), ("seq", INT), ("hash", HASH), ("at", INT),
               ("status", one_of("active", "deactivated", "removed")), ("nodes", Arr(NODE)), ("keys", Arr(KEY)),
               ("revoked", Arr(STR)), ("issuers", Arr(ISSUER)))
ACK = Obj(("feed", FEED_ID), ("gateway", GATEWAY_ID), ("seq", INT), ("hash", HASH), ("at", INT),
          ("error", STR_OR_NULL))
JWS_HEADER = Obj(("alg", STR), ("kid", STR), ("typ", STR))
JWE_HEADER = Obj(("alg", STR), ("enc", STR), ("kid", STR),
                 ("epk", Obj(("kty", STR), ("crv", STR), ("x", STR))))


def record_shape(kind):
    return Obj(*[(n, BODIES[kind] if n == "body" else s) for n, s in RECORD.members])


# --- keys ---------------------------------------------------------------------------------------

def kid(public_raw):
    return hashlib.sha256(public_raw).hexdigest()[:16]


def raw(public):
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def ed25519_public(seed):
    return raw(Ed25519PrivateKey.from_private_bytes(seed).public_key())


def x25519_public(scalar):
    return raw(X25519PrivateKey.from_private_bytes(scalar).public_key())


def hex32(text, what):
    need(re.fullmatch(r"[0-9a-fA-F]{64}", text or "") is not None, f"{what}: expected 64 hex digits")
    return bytes.fromhex(text)


# --- signed objects (JWS, EdDSA) ----------------------------------------------------------------

def verify_jws(text, typ, public_raw, limit):
    """Header, then signature, then the payload's bytes (not yet parsed)."""
    need(text.isascii(), "not ASCII")
    need(len(text) <= limit, f"{len(text)} bytes, over the limit of {limit}")
    parts = text.split(".")
    need(len(parts) == 3, f"{len(parts)} dot-separated parts, expected 3 (JWS compact)")
    header_bytes = b64d(parts[0], "header")
    header = parse_json(header_bytes, "header")
    check(header, JWS_HEADER, "header")
    need(header["alg"] == "EdDSA", f"header: alg {header['alg']!r}, expected \"EdDSA\"")
    need(header["typ"] == typ, f"header: typ {header['typ']!r}, expected {typ!r}")
    need(header["kid"] == kid(public_raw),
         f"header: kid {header['kid']!r} is not the trusted key's {kid(public_raw)!r} (signed by another key)")
    need(compact(header, JWS_HEADER).encode() == header_bytes, "header: not in compact form")
    signature = b64d(parts[2], "signature")
    need(len(signature) == 64, f"signature: {len(signature)} bytes, expected 64")
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(
            signature, (parts[0] + "." + parts[1]).encode("ascii"))
    except InvalidSignature:
        raise Refused("signature does not verify") from None
    return b64d(parts[1], "payload")


def parse_payload(payload_bytes, shape_of, what):
    """Parse, check the members (shape_of(obj) picks the shape), check the compact form."""
    obj = parse_json(payload_bytes, what)
    need(isinstance(obj, dict), f"{what}: expected a JSON object")
    shape = shape_of(obj)
    check(obj, shape, what)
    try:
        again = compact(obj, shape).encode("utf-8")
    except UnicodeEncodeError:
        raise Refused(f"{what}: a string with a lone surrogate") from None
    if again != payload_bytes:
        at = next((i for i, (x, y) in enumerate(zip(again, payload_bytes)) if x != y),
                  min(len(again), len(payload_bytes)))
        raise Refused(f"{what}: not in compact form (documented member order, no white space, "
                      f"minimal escapes): byte {at} is {payload_bytes[at:at + 24]!r}, "
                      f"the compact form has {again[at:at + 24]!r}")
    return obj


def check_record_members(obj):
    need(isinstance(obj.get("kind"), str) and obj["kind"] in BODIES,
         f"record: kind {json.dumps(obj.get('kind'))} is none of {', '.join(BODIES)}")
    return record_shape(obj["kind"])


def verify_record(text, feed_public, feed):
    payload = verify_jws(text, "m2mguard-record", feed_public, RECORD_MAX)
    rec = parse_payload(payload, check_record_members, "record")
    aud = rec["aud"]
    need(aud == ["*"] or (1 <= len(aud) <= 64 and all(AUD_ID.test(a) for a in aud)),
         f"record.aud: expected [\"*\"] or 1 to 64 gateway ids, got {json.dumps(aud)[:80]}")
    need(rec["feed"] == feed, f"record.feed {rec['feed']!r}, expected {feed!r}")
    need(rec["seq"] >= 1, "record.seq: 0 (the first record is 1)")
    if rec["kind"] == "key.put":
        for gateway, sealed in rec["body"]["sealed"].items():
            jwe_parts(sealed, f"record.body.sealed.{gateway}")
    return rec, payload, hashlib.sha256(text.encode("ascii")).hexdigest()


def verify_head(text, feed_public, feed):
    head = parse_payload(verify_jws(text, "m2mguard-head", feed_public, HEAD_MAX), lambda o: HEAD, "head")
    need(head["feed"] == feed, f"head.feed {head['feed']!r}, expected {feed!r}")
    need(head["seq"] > 0 or head["hash"] == ZERO_HASH, "head: seq 0 with a hash other than 64 zeros")
    return head


def verify_snapshot(text, feed_public, feed):
    snap = parse_payload(verify_jws(text, "m2mguard-snapshot", feed_public, SNAPSHOT_MAX),
                         lambda o: SNAPSHOT, "snapshot")
    need(snap["feed"] == feed, f"snapshot.feed {snap['feed']!r}, expected {feed!r}")
    need(snap["seq"] > 0 or snap["hash"] == ZERO_HASH, "snapshot: seq 0 with a hash other than 64 zeros")
    for i, key in enumerate(snap["keys"]):
        need(list(key["sealed"]) == [snap["gateway"]],
             f"snapshot.keys[{i}].sealed: members {list(key['sealed'])}, expected this gateway's only")
        jwe_parts(key["sealed"][snap["gateway"]], f"snapshot.keys[{i}].sealed")
    return snap


def verify_ack(text, gateway_public, feed):
    ack = parse_payload(verify_jws(text, "m2mguard-ack", gateway_public, ACK_MAX), lambda o: ACK, "ack")
    need(ack["feed"] == feed, f"ack.feed {ack['feed']!r}, expected {feed!r}")
    return ack


class Chain:
    """The position in the feed: the last record's seq and hash."""
    def __init__(self, seq=0, hash=ZERO_HASH):
        self.seq, self.hash = seq, hash

    def extend(self, rec, record_hash):
        need(rec["seq"] > self.seq, f"seq {rec['seq']} after {self.seq}: old or replayed")
        need(rec["seq"] == self.seq + 1, f"seq {rec['seq']} after {self.seq}: records missing")
        if self.hash is not None:
            need(rec["prev"] == self.hash,
                 f"prev {rec['prev']} is not the hash of record {self.seq} ({self.hash}): a fork")
        self.seq, self.hash = rec["seq"], record_hash


# --- sealed secrets (JWE ECDH-ES+A256KW, X25519, A256GCM) ---------------------------------------

def kek(z):
    alg = JWE_ALG.encode("ascii")
    return hashlib.sha256(b"\0\0\0\1" + z + len(alg).to_bytes(4, "big") + alg
                          + b"\0\0\0\0" + b"\0\0\0\0" + (256).to_bytes(4, "big")).digest()


def jwe_header(sealing_kid, epk_raw):
    return {"alg": JWE_ALG, "enc": JWE_ENC, "kid": sealing_kid,
            "epk": {"kty": "OKP", "crv": "X25519", "x": b64e(epk_raw)}}


def jwe_parts(text, what):
    """The five parts of a sealed secret and its header, checked as far as no key is needed."""
    need(is_str(text), f"{what}: expected a string")
    parts = text.split(".")
    need(len(parts) == 5, f"{what}: {len(parts)} dot-separated parts, expected 5 (JWE compact)")
    header_bytes = b64d(parts[0], f"{what} header")
    header = parse_json(header_bytes, f"{what} header")
    check(header, JWE_HEADER, f"{what} header")
    epk = b64d(header["epk"]["x"], f"{what} header epk.x")
    need(len(epk) == 32, f"{what} header: epk.x is {len(epk)} bytes, expected 32")
    need(header == jwe_header(header["kid"], epk),
         f"{what} header: differs from the profile in a member other than epk.x and kid")
    need(compact(header, JWE_HEADER).encode() == header_bytes, f"{what} header: not in compact form")
    wrapped, iv, ciphertext, tag = (b64d(p, f"{what} part {i + 2}") for i, p in enumerate(parts[1:]))
    need(len(wrapped) == 40, f"{what}: encrypted key {len(wrapped)} bytes, expected 40")
    need(len(iv) == 12, f"{what}: IV {len(iv)} bytes, expected 12")
    need(len(ciphertext) >= 16, f"{what}: ciphertext {len(ciphertext)} bytes (a secret is at least 16)")
    need(len(tag) == 16, f"{what}: tag {len(tag)} bytes, expected 16")
    return parts[0], header, epk, wrapped, iv, ciphertext, tag


def open_sealed(text, scalar, what="sealed secret"):
    header_b64, header, epk, wrapped, iv, ciphertext, tag = jwe_parts(text, what)
    own = kid(x25519_public(scalar))
    need(header["kid"] == own, f"{what}: kid {header['kid']!r} is not this gateway's sealing kid {own!r}")
    try:
        z = X25519PrivateKey.from_private_bytes(scalar).exchange(X25519PublicKey.from_public_bytes(epk))
    except ValueError:
        raise Refused(f"{what}: X25519 gives an all-zero Z") from None
    need(z != bytes(32), f"{what}: X25519 gives an all-zero Z")
    try:
        cek = aes_key_unwrap(kek(z), wrapped)
    except InvalidUnwrap:
        raise Refused(f"{what}: the content key does not unwrap") from None
    try:
        secret = AESGCM(cek).decrypt(iv, ciphertext + tag, header_b64.encode("ascii"))
    except InvalidTag:
        raise Refused(f"{what}: does not decrypt (AES-GCM tag)") from None
    need(len(secret) >= 16, f"{what}: a secret of {len(secret)} bytes (at least 16)")
    return secret


def seal(secret, gateway_public, ephemeral_scalar, cek, iv):
    header = jwe_header(kid(gateway_public), x25519_public(ephemeral_scalar))
    header_b64 = b64e(compact(header, JWE_HEADER).encode())
    z = X25519PrivateKey.from_private_bytes(ephemeral_scalar).exchange(
        X25519PublicKey.from_public_bytes(gateway_public))
    sealed = AESGCM(cek).encrypt(iv, secret, header_b64.encode("ascii"))
    return ".".join([header_b64, b64e(aes_key_wrap(kek(z), cek)), b64e(iv),
                     b64e(sealed[:-16]), b64e(sealed[-16:])])


# --- vectors ------------------------------------------------------------------------------------

def where(what, fn, *args):
    """fn(*args), with what it was applied to named in a refusal."""
    try:
        return fn(*args)
    except Refused as e:
        raise Refused(f"{what}: {e}") from None


class Group:
    """One line of output: a named group of checks, each counted."""
    total = 0

    def __init__(self, name):
        self.name, self.n, self.notes = name, 0, []

    def __enter__(self):
        return self

    def ok(self, cond, why):
        need(cond, why)
        self.n += 1

    def run(self, what, fn, *args):
        """where(what, fn, *args) as one check."""
        result = where(what, fn, *args)
        self.n += 1
        return result

    def __exit__(self, kind, exc, tb):
        if exc is None:
            Group.total += self.n
            print(f"ok  {self.name} ({self.n} checks)")
            for note in self.notes:
                print(f"    {note}")
        elif isinstance(exc, Refused):
            sys.exit(f"FAIL {self.name.split(':')[0]}: {exc}")


def items(values):
    """An array's items as a sorted list, for comparing arrays whose order the spec leaves open."""
    return sorted(json.dumps(i, sort_keys=True) for i in values)


def snapshot_state(records, upto, gateway):
    """What a snapshot for gateway at record upto holds, from the records 1..upto."""
    nodes, keys, revoked, status, issuers = {}, {}, set(), "active", {}
    for rec in records[:upto]:
        if rec["aud"] != ["*"] and gateway not in rec["aud"]:
            continue
        body = rec["body"]
        if rec["kind"] == "node.put":
            nodes[body["id"]] = body
        elif rec["kind"] == "node.remove":
            nodes.pop(body["id"], None)
        elif rec["kind"] == "key.put":
            keys[body["id"]] = dict(body, sealed={gateway: body["sealed"][gateway]})
        elif rec["kind"] == "key.remove":
            keys.pop(body["id"], None)
        elif rec["kind"] == "token.revoke":
            revoked.add(body["jti"])
        elif rec["kind"] == "gateway.put" and body["id"] == gateway:
            status = body["status"]
        elif rec["kind"] == "issuer.put":
            issuers[body["iss"]] = body
        elif rec["kind"] == "issuer.remove":
            issuers.pop(body["iss"], None)
    return {"status": status, "nodes": items(nodes.values()), "keys": items(keys.values()),
            "revoked": sorted(revoked), "issuers": items(issuers.values())}


def signed_payload(compact_text):
    return b64d(compact_text.split(".")[1], "payload")


def for_gateway(rec, gateway):
    return rec["aud"] == ["*"] or gateway in rec["aud"]


def check_vectors(path):
    v = json.load(open(path, encoding="utf-8"))
    k, feed, gateway = v["keys"], v["feed"], v["keys"]["gateway"]
    feed_public = ed25519_public(hex32(k["feed_seed"], "feed_seed"))
    sign_public = ed25519_public(hex32(k["gateway_sign_seed"], "gateway_sign_seed"))
    seal_scalar = hex32(k["gateway_seal_scalar"], "gateway_seal_scalar")
    seal_public = x25519_public(seal_scalar)

    with Group("keys: public keys and kids derived from the seeds and the scalar") as g:
        for name, got in (("feed_public", feed_public.hex()), ("feed_kid", kid(feed_public)),
                          ("gateway_sign_public", sign_public.hex()),
                          ("gateway_seal_public", seal_public.hex()), ("gateway_seal_kid", kid(seal_public))):
            g.ok(got == k[name], f"{name}: derived {got}, the vector says {k[name]}")

    s = v["sealed"]
    with Group("sealed secret: opens with the gateway's scalar, re-seals byte for byte") as g:
        secret = g.run("sealed.compact", open_sealed, s["compact"], seal_scalar)
        g.ok(secret.hex() == s["secret_hex"], f"opens to {secret.hex()}, expected {s['secret_hex']}")
        again = seal(bytes.fromhex(s["secret_hex"]), seal_public, hex32(s["ephemeral_scalar"], "ephemeral_scalar"),
                     hex32(s["cek"], "cek"), bytes.fromhex(s["iv"]))
        g.ok(again == s["compact"], "re-sealed with the vector's ephemeral scalar, CEK and IV:\n"
                                    f"  {again}\nexpected\n  {s['compact']}")

    records, hashes, chain = [], [], Chain()

    def names_record(seq, hash):
        return 1 <= seq <= len(hashes) and hashes[seq - 1] == hash

    with Group(f"records 1..{len(v['records'])}: signature, payload, compact form, hash, chain, "
               "bodies, sealed entries") as g:
        for i, r in enumerate(v["records"]):
            what = f"record {i + 1}"
            rec, payload, h = g.run(what, verify_record, r["compact"], feed_public, feed)
            g.ok(payload == r["payload"].encode("utf-8"),
                 f"{what}: the signed payload is not the vector's payload:\n  {payload!r}")
            g.ok(h == r["hash"], f"{what}: hash {h}, the vector says {r['hash']}")
            g.run(what, chain.extend, rec, h)
            if rec["kind"] == "key.put" and for_gateway(rec, gateway):
                sealed = rec["body"]["sealed"]
                g.ok(gateway in sealed, f"{what}: a key.put for {gateway} without a sealed entry for it")
                g.run(f"{what} sealed.{gateway}", open_sealed, sealed[gateway], seal_scalar)
            records.append(rec)
            hashes.append(h)

    h = v["head"]
    with Group("head: signature, payload, compact form, names the last record") as g:
        head = g.run("head", verify_head, h["compact"], feed_public, feed)
        g.ok(signed_payload(h["compact"]) == h["payload"].encode(), "head: the signed payload is not the vector's")
        g.ok((head["seq"], head["hash"]) == (chain.seq, chain.hash),
             f"head names ({head['seq']}, {head['hash']}), the last record is ({chain.seq}, {chain.hash})")

    sn = v["snapshot"]
    with Group("snapshot: signature, payload, compact form, sealed entries, the state at its record") as g:
        snap = g.run("snapshot", verify_snapshot, sn["compact"], feed_public, feed)
        g.ok(signed_payload(sn["compact"]) == sn["payload"].encode(),
             "snapshot: the signed payload is not the vector's")
        g.ok(snap["gateway"] == gateway, f"snapshot for {snap['gateway']!r}, the vector gateway is {gateway!r}")
        g.ok(names_record(snap["seq"], snap["hash"]),
             f"snapshot at ({snap['seq']}, {snap['hash']}), no record of the chain")
        for i, key in enumerate(snap["keys"]):
            g.run(f"snapshot.keys[{i}].sealed", open_sealed, key["sealed"][gateway], seal_scalar)
        held = {"status": snap["status"], "nodes": items(snap["nodes"]), "keys": items(snap["keys"]),
                "revoked": sorted(snap["revoked"]), "issuers": items(snap["issuers"])}
        made = snapshot_state(records, snap["seq"], gateway)
        differs = [m for m in held if held[m] != made[m]]
        g.ok(not differs, "; ".join(f"snapshot.{m} holds {held[m]}, records 1..{snap['seq']} give {made[m]}"
                                    for m in differs))

    a = v["ack"]
    with Group("ack: signed by the gateway signing key, payload, compact form, names a record") as g:
        ack = g.run("ack", verify_ack, a["compact"], sign_public, feed)
        g.ok(signed_payload(a["compact"]) == a["payload"].encode(), "ack: the signed payload is not the vector's")
        g.ok(ack["gateway"] == gateway, f"ack from {ack['gateway']!r}, the vector gateway is {gateway!r}")
        g.ok(names_record(ack["seq"], ack["hash"]),
             f"ack names ({ack['seq']}, {ack['hash']}), no record of the chain")

    with Group(f"refused: {len(v['refused'])} entries refused as records") as g:
        for r in v["refused"]:
            g.ok(r["typ"] == "m2mguard-record", f"{r['why']!r}: typ {r['typ']!r}, expected records only")
            try:
                verify_record(r["compact"], feed_public, feed)
            except Refused as e:
                g.ok(True, "")
                g.notes.append(f"{r['why']}: {e}")
                continue
            raise Refused(f"{r['why']!r}: verifies as a record")
    check_removed(v, feed_public, feed, gateway)
    check_issuer_records(v.get("issuer_records", []), feed_public, feed)
    print(f"ok: {Group.total} checks")


def check_issuer_records(vectors, feed_public, feed):
    """issuer.put and issuer.remove records (each on its own, seq 1): they verify, and their
    payload and hash are the vector's."""
    with Group(f"issuer records: {len(vectors)} verify, payload and hash as the vector says") as g:
        for i, r in enumerate(vectors):
            what = f"issuer record {i}"
            rec, payload, h = g.run(what, verify_record, r["compact"], feed_public, feed)
            g.ok(rec["kind"] in ("issuer.put", "issuer.remove"), f"{what}: kind {rec['kind']!r}")
            g.ok(payload == r["payload"].encode("utf-8"), f"{what}: the signed payload is not the vector's")
            g.ok(h == r["hash"], f"{what}: hash {h}, the vector says {r['hash']}")


# --- the token service (docs/authority.md "Tokens") -------------------------------------------

OPS = ("create", "retrieve", "update", "delete", "notify", "discover")   # acop bits 1, 2, 4, ...
DAS_REQUEST = Obj(("or", NODE_ID), ("aud", Arr(STR)), ("ris", Arr(STR)), ("ops", Arr(one_of(*OPS))),
                  ("at", INT), ("nonce", Leaf("16 to 64 of A-Za-z0-9_-", pattern(r"[A-Za-z0-9_-]{16,64}"))))


def verify_das_request(text, kid_, secret):
    """A node's token request: header exactly as documented, HS256 under the key's secret."""
    import hmac
    parts = text.split(".")
    need(len(parts) == 3, "not three base64url parts")
    header = b64d(parts[0], "header")
    want = json.dumps({"alg": "HS256", "kid": kid_, "typ": "m2mguard-das-request"}, separators=(",", ":"))
    need(header == want.encode(), f"header {header!r}, expected {want}")
    mac = hmac.new(secret, (parts[0] + "." + parts[1]).encode("ascii"), hashlib.sha256).digest()
    need(hmac.compare_digest(mac, b64d(parts[2], "signature")), "HS256 signature does not verify")
    payload = b64d(parts[1], "payload")
    return parse_payload(payload, lambda o: DAS_REQUEST, "token request"), payload


def check_das(path):
    v = json.load(open(path, encoding="utf-8"))
    secret = bytes.fromhex(v["node_key"]["secret_hex"])
    public = ed25519_public(hex32(v["token_key"]["seed"], "token_key.seed"))
    with Group("das: the token key's public part and kid") as g:
        g.ok(public.hex() == v["token_key"]["public"], "token_key.public is not the seed's")
        g.ok(kid(public) == v["token_key"]["kid"], "token_key.kid is not the public key's")
    r = v["request"]
    with Group("das: the node's request (HS256 under its key, exact header and payload)") as g:
        req, payload = g.run("request", verify_das_request, r["compact"], v["node_key"]["id"], secret)
        g.ok(payload == r["payload"].encode(), "the signed payload is not the vector's")
        g.ok(req["or"] == v["node_key"]["node"], "or is not the key's node")
        g.ok(abs(req["at"] - v["now"]) <= 60, "at is more than 60 s from now")
    t = v["token"]
    with Group("das: the issued JWT (EdDSA, header, claims in order, what the request asked)") as g:
        parts = t["compact"].split(".")
        g.ok(len(parts) == 3, "the token is not three parts")
        header = b64d(parts[0], "token header")
        want = json.dumps({"alg": "EdDSA", "kid": v["token_key"]["kid"], "typ": "JWT"}, separators=(",", ":"))
        g.ok(header == want.encode(), f"token header {header!r}, expected {want}")
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(b64d(parts[2], "token signature"),
                                                             (parts[0] + "." + parts[1]).encode("ascii"))
            g.ok(True, "")
        except InvalidSignature:
            g.ok(False, "the token's signature does not verify under the token key")
        claims_bytes = b64d(parts[1], "token claims")
        g.ok(claims_bytes == t["claims"].encode(), "the signed claims are not the vector's")
        claims = json.loads(claims_bytes)
        order = ["iss", "aud", "azp", "jti", "nbf", "exp", "tkps"] + (["tkuc"] if v["grant"]["uses"] else [])
        g.ok(list(claims) == order, f"claims {list(claims)}, expected {order}")
        g.ok(claims["iss"] == v["issuer"], "iss is not the issuer")
        g.ok(claims["aud"] == req["aud"] and claims["azp"] == req["or"], "aud or azp is not what was asked")
        g.ok(re.fullmatch(r"[0-9a-f]{32}", claims["jti"]) is not None, "jti is not 32 hex digits")
        g.ok(claims["nbf"] == v["now"] and claims["exp"] == v["now"] + v["grant"]["ttl_s"], "nbf/exp")
        acop = sum(1 << OPS.index(o) for o in req["ops"])
        g.ok(claims["tkps"] == [{"ris": req["ris"], "pv": {"acr": [{"acop": acop}]}}], f"tkps {claims['tkps']}")
        g.ok(claims.get("tkuc") == v["grant"]["uses"], "tkuc is not the grant's uses")
    with Group(f"das: {len(v['refused_requests'])} requests refused") as g:
        for bad in v["refused_requests"]:
            try:
                verify_das_request(bad["compact"], v["node_key"]["id"], secret)
            except Refused as e:
                g.ok(True, "")
                g.notes.append(f"{bad['why']}: {e}")
                continue
            raise Refused(f"{bad['why']!r}: verifies")
    print(f"ok: {Group.total} checks")


def check_removed(v, feed_public, feed, gateway):
    """The removal vectors: gateway.put status removed to that gateway alone, and the snapshot a
    removed gateway gets (status removed, no key sealed to it)."""
    r, sn = v["removed"]["record"], v["removed"]["snapshot"]
    with Group("removed: gateway.put status removed to one gateway, its snapshot holds no key") as g:
        rec, _, digest = g.run("removed.record", verify_record, r["compact"], feed_public, feed)
        g.ok(signed_payload(r["compact"]) == r["payload"].encode(), "removed.record: the signed payload is not the vector's")
        g.ok(digest == r["hash"], "removed.record: hash is not SHA-256 of the compact form")
        g.ok(rec["kind"] == "gateway.put" and rec["body"] == {"id": gateway, "status": "removed"},
             f"removed.record: {rec['kind']} {rec['body']}, expected gateway.put removed for {gateway!r}")
        g.ok(rec["aud"] == [gateway], f"removed.record: aud {rec['aud']}, expected [{gateway!r}] alone")
        snap = g.run("removed.snapshot", verify_snapshot, sn["compact"], feed_public, feed)
        g.ok(signed_payload(sn["compact"]) == sn["payload"].encode(), "removed.snapshot: the signed payload is not the vector's")
        g.ok(snap["status"] == "removed" and snap["keys"] == [], "removed.snapshot: expected status removed and no keys")
        g.ok((snap["seq"], snap["hash"]) == (rec["seq"], r["hash"]), "removed.snapshot: not at the removal record")


# --- live output --------------------------------------------------------------------------------

def check_records(path, feed_public, feed, after_seq, after_hash):
    data = open(path, "rb").read()
    if data == b"":
        print(f"ok: no records after {after_seq}")
        return
    need(data.endswith(b"\n"), "the page does not end in \"\\n\"")
    lines = data[:-1].split(b"\n")
    need(len(lines) <= PAGE_MAX, f"{len(lines)} records, over a page's {PAGE_MAX}")
    chain = Chain(after_seq, after_hash)
    for n, line in enumerate(lines, 1):
        what = f"record on line {n} (seq {chain.seq + 1} expected)"
        try:
            need(line != b"", "an empty line")
            need(b"\r" not in line, "a carriage return (lines end in \"\\n\" alone)")
            text = line.decode("ascii")
        except UnicodeDecodeError:
            raise Refused(f"{what}: not ASCII") from None
        except Refused as e:
            raise Refused(f"{what}: {e}") from None
        rec, _, h = where(what, verify_record, text, feed_public, feed)
        where(f"record seq {rec['seq']} on line {n}", chain.extend, rec, h)
    first = chain.seq - len(lines) + 1
    trust = "" if after_hash is not None else f" (prev of record {first} not checked: no --after-hash)"
    print(f"ok: records {first}..{chain.seq}, last hash {chain.hash}{trust}")


def check_head(path, feed_public, feed, now):
    data = open(path, "rb").read()
    data = data[:-1] if data.endswith(b"\n") else data
    need(b"\n" not in data, "head: more than one line")
    need(data.isascii(), "head: not ASCII")
    text = data.decode("ascii")
    head = where("head", verify_head, text, feed_public, feed)
    need(head["valid_until"] >= now, f"head: expired at {head['valid_until']} ({now - head['valid_until']} s ago)")
    need(head["at"] <= now + FUTURE_S, f"head: signed {head['at'] - now} s in the future (more than {FUTURE_S})")
    print(f"ok: head seq {head['seq']}, hash {head['hash']}, at {head['at']}, "
          f"valid for another {head['valid_until'] - now} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("vectors")
    v.add_argument("file")
    sub.add_parser("das").add_argument("file")
    for name in ("records", "head"):
        p = sub.add_parser(name)
        p.add_argument("--feed-key", required=True, help="the feed's Ed25519 public key, 64 hex digits")
        p.add_argument("--feed", required=True, help="the feed id")
        p.add_argument("file")
    r = sub.choices["records"]
    r.add_argument("--after-seq", type=int, default=0)
    r.add_argument("--after-hash")
    sub.choices["head"].add_argument("--now", type=int, help="Unix seconds (default: now)")
    a = ap.parse_args()
    try:
        if a.cmd in ("vectors", "das"):
            try:
                (check_vectors if a.cmd == "vectors" else check_das)(a.file)
            except (KeyError, TypeError, IndexError, AttributeError, ValueError) as e:
                sys.exit(f"FAIL {a.file}: not the layout of a {a.cmd} vector file ({type(e).__name__}: {e})")
            return
        feed_public = hex32(a.feed_key, "--feed-key")
        need(FEED_ID.test(a.feed), "--feed: expected 1 to 64 of A-Za-z0-9._-")
        if a.cmd == "records":
            need(a.after_seq >= 0, "--after-seq: expected 0 or more")
            after_hash = a.after_hash if a.after_hash is not None else (ZERO_HASH if a.after_seq == 0 else None)
            need(after_hash is None or HASH.test(after_hash), "--after-hash: expected 64 lowercase hex digits")
            need(a.after_seq > 0 or after_hash == ZERO_HASH, "--after-hash: the hash at seq 0 is 64 zeros")
            check_records(a.file, feed_public, a.feed, a.after_seq, after_hash)
        else:
            check_head(a.file, feed_public, a.feed, int(time.time()) if a.now is None else a.now)
    except Refused as e:
        sys.exit(f"FAIL {e}")
    except OSError as e:
        sys.exit(f"FAIL {e}")


if __name__ == "__main__":
    main()
