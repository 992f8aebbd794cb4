#!/usr/bin/env python3
"""oneM2M CoAP client for scripts/interop_coap (Python 3 standard library only).

A small CoAP client (RFC 7252) that knows oneM2M's options (TS-0008: fr 279, rqi 283, rvi 271,
ty 267, rsc 307), so it reads answers whose odd option numbers RFC 7252 would call critical.
It retransmits confirmable requests, waits for separate responses (and acknowledges them),
follows Block2, and answers an Echo challenge (4.01 with option 252, RFC 9175) by repeating the
request with the value, as the gateway asks unvalidated sources to do.

Subcommands:

  scenario BASE --prefix P --out FILE
      The scenario of scripts/interop_scenario.py over CoAP against BASE (coap://host:port),
      steps normalised as JSON in FILE. Exit 0 when every step had the expected rsc.

  request BASE METHOD PATH [--origin O] [--ty N] [--body JSON] [--no-echo] [--json]
      One request; prints "<code> <rsc or -> <payload text>" (with --json a JSON payload whole,
      else its m2m:dbg), or "ERR <reason>" when no answer came. With --no-echo an Echo
      challenge is printed instead of answered.

  compare / step: as in scripts/interop_scenario.py (scripts/onem2m_client.py).
"""

import argparse
import itertools
import json
import os
import random
import socket
import struct
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onem2m_client as scenario  # noqa: E402  (same directory)

CON, NON, ACK, RST = 0, 1, 2, 3
METHODS = {"GET": 1, "POST": 2, "PUT": 3, "DELETE": 4}
URI_PATH, CONTENT_FORMAT, URI_QUERY, ACCEPT, BLOCK2 = 11, 12, 15, 17, 23
ECHO = 252
TY, RVI, FR, RQI, RSC = 267, 271, 279, 283, 307
JSON_FORMAT = 50
ACK_TIMEOUT_S, MAX_RETRANSMIT = 2.0, 4


def encode(kind, code, mid, token, options, payload=b""):
    out = bytearray([0x40 | (kind << 4) | len(token), code]) + struct.pack("!H", mid) + token
    last = 0
    for number, value in sorted(options, key=lambda o: o[0]):
        delta, length = number - last, len(value)
        last = number

        def nibble(n):
            if n < 13:
                return n, b""
            if n < 269:
                return 13, bytes([n - 13])
            return 14, struct.pack("!H", n - 269)

        d, dext = nibble(delta)
        l, lext = nibble(length)
        out += bytes([(d << 4) | l]) + dext + lext + value
    if payload:
        out += b"\xff" + payload
    return bytes(out)


def decode(data):
    if len(data) < 4 or data[0] >> 6 != 1:
        raise ValueError("not CoAP 1")
    kind, tkl, code = (data[0] >> 4) & 3, data[0] & 15, data[1]
    mid = struct.unpack("!H", data[2:4])[0]
    token, i, number, options = data[4:4 + tkl], 4 + tkl, 0, []
    while i < len(data) and data[i] != 0xFF:
        d, l = data[i] >> 4, data[i] & 15
        i += 1
        ext = []
        for n in (d, l):
            if n == 13:
                ext.append(data[i] + 13)
                i += 1
            elif n == 14:
                ext.append(struct.unpack("!H", data[i:i + 2])[0] + 269)
                i += 2
            elif n == 15:
                raise ValueError("reserved nibble")
            else:
                ext.append(n)
        number += ext[0]
        options.append((number, data[i:i + ext[1]]))
        i += ext[1]
    payload = data[i + 1:] if i < len(data) else b""
    return kind, code, mid, token, options, payload


def uint(value):
    raw = value.to_bytes(4, "big").lstrip(b"\0")
    return raw


def as_int(raw):
    # ACME writes rsc as text ("2001"), TS-0008 as a uint: a uint with only ASCII-digit bytes
    # would be >= 12336, never a response status code, so both read unambiguously.
    if raw and all(0x30 <= b <= 0x39 for b in raw):
        return int(raw.decode())
    return int.from_bytes(raw, "big") if raw else None


def code_text(code):
    return f"{code >> 5}.{code & 31:02d}"


class Answer:
    def __init__(self, code, options, payload, rqi):
        self.code = code
        self.options = options
        self.raw = payload
        self.sent_rqi = rqi
        self.status = code_text(code)

        def one(number):
            return next((v for n, v in options if n == number), None)

        rsc = one(RSC)
        self.rsc = str(as_int(rsc)) if rsc is not None else None
        ri, rvi, ct = one(RQI), one(RVI), one(CONTENT_FORMAT)
        # The fields onem2m_client.Normaliser reads, under their HTTP names.
        self.headers = {
            "X-M2M-RSC": self.rsc,
            "X-M2M-RI": ri.decode(errors="replace") if ri is not None else None,
            "X-M2M-RVI": rvi.decode(errors="replace") if rvi is not None else None,
            "Content-Type": str(int.from_bytes(ct, "big")) if ct is not None else None,
        }
        try:
            self.body = json.loads(payload) if payload else None
        except ValueError:
            self.body = payload.decode("utf-8", "replace")

    def echo(self):
        if self.code != 0x81:  # 4.01
            return None
        return next((v for n, v in self.options if n == ECHO), None)

    def debug_text(self):
        return scenario.debug_text(self.body)


class Client:
    def __init__(self, base, answer_echo=True):
        url = urllib.parse.urlsplit(base)
        self.addr = (url.hostname, url.port or 5683)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.mid = random.randrange(0x10000)
        self.answer_echo = answer_echo
        self.counter = itertools.count(1)
        self.rqi_prefix = f"coap-{os.getpid()}-{int(time.time() * 1000)}"

    def next_mid(self):
        self.mid = (self.mid + 1) & 0xFFFF
        return self.mid

    def request(self, method, path, origin, ty=None, content=None, cert=None):
        del cert  # the HTTP client's signature; no certificates over plain CoAP
        rqi = f"{self.rqi_prefix}-{next(self.counter)}"
        split = urllib.parse.urlsplit(path)
        options = [(URI_PATH, s.encode()) for s in split.path.split("/") if s]
        options += [(URI_QUERY, q.encode()) for q in split.query.split("&") if q]
        options += [(RQI, rqi.encode()), (RVI, scenario.RELEASE.encode())]
        if origin is not None:
            options.append((FR, origin.encode()))
        if ty is not None:
            options.append((TY, uint(ty)))
        payload = b""
        if content is not None:
            payload = content if isinstance(content, bytes) else json.dumps(content).encode()
            options.append((CONTENT_FORMAT, uint(JSON_FORMAT)))
        options.append((ACCEPT, uint(JSON_FORMAT)))
        answer = self.exchange(METHODS[method], options, payload, rqi)
        echo = answer.echo()
        if echo is not None and self.answer_echo:
            answer = self.exchange(METHODS[method], options + [(ECHO, echo)], payload, rqi)
        return self.follow_blocks(method, options, answer, rqi)

    def follow_blocks(self, method, options, answer, rqi):
        """Block2: fetch the remaining blocks of a GET answer and join them."""
        body = answer.raw
        while method == "GET":
            block = next((v for n, v in answer.options if n == BLOCK2), None)
            value = int.from_bytes(block, "big") if block else 0
            if not block or not value & 8:
                break
            num, szx = value >> 4, value & 7
            block_option = (BLOCK2, uint(((num + 1) << 4) | szx) or b"\0")
            answer = self.exchange(1, options + [block_option], b"", rqi)
            body += answer.raw
        return Answer(answer.code, answer.options, body, rqi)

    def exchange(self, code, options, payload, rqi):
        mid, token = self.next_mid(), os.urandom(4)
        datagram = encode(CON, code, mid, token, options, payload)
        timeout = ACK_TIMEOUT_S
        for _ in range(MAX_RETRANSMIT + 1):
            self.sock.sendto(datagram, self.addr)
            deadline = time.monotonic() + timeout
            answer = self.wait(mid, token, deadline, rqi)
            if answer is not None:
                return answer
            timeout *= 2
        raise TimeoutError(f"no answer from {self.addr[0]}:{self.addr[1]}")

    def wait(self, mid, token, deadline, rqi):
        separate = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except socket.timeout:
                return None
            try:
                kind, code, rmid, rtoken, options, payload = decode(data)
            except (ValueError, IndexError, struct.error):
                continue
            if kind == RST and rmid == mid:
                raise ConnectionResetError("RST")
            if kind == ACK and rmid == mid and code == 0:
                separate = True  # the answer follows as a message of its own
                deadline = time.monotonic() + 30
                continue
            if kind in (CON, NON) and rtoken == token and code >= 0x40:
                if kind == CON:
                    self.sock.sendto(encode(ACK, 0, rmid, b"", []), self.addr)
                return Answer(code, options, payload, rqi)
            if kind == ACK and rmid == mid and rtoken == token and not separate:
                return Answer(code, options, payload, rqi)


def cmd_scenario(args):
    client = Client(args.base)
    return scenario.scenario_command(
        args.out, lambda: scenario.run_requests(client, args.prefix), (OSError, TimeoutError))


def cmd_request(args):
    client = Client(args.base, answer_echo=not args.no_echo)
    content = args.body.encode() if args.body is not None else None
    return scenario.request_command(
        lambda: client.request(args.method, args.path, args.origin, args.ty, content),
        (OSError, TimeoutError), whole_json=args.json)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("scenario", help="run the scenario over CoAP, write normalised steps")
    s.add_argument("base")
    s.add_argument("--prefix", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_scenario)

    scenario.add_step_commands(sub)

    r = sub.add_parser("request", help="send one request, print code, rsc and text")
    r.add_argument("base")
    r.add_argument("method", choices=sorted(METHODS))
    r.add_argument("path")
    r.add_argument("--origin")
    r.add_argument("--ty", type=int)
    r.add_argument("--body")
    r.add_argument("--no-echo", action="store_true", help="print an Echo challenge, do not answer")
    r.add_argument("--json", action="store_true", help="print a JSON payload whole, not its m2m:dbg")
    r.set_defaults(func=cmd_request)

    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
