#!/usr/bin/env python3
"""A oneM2M request with CoAPthon, the CoAP library ACME ships (CoAPthon3_ACME_CSE), for
scripts/interop_coap. Run it with the Python of the venv that holds ACME.

CoAPthon has no Echo support (RFC 9175): it is the legacy client that the gateway's
`[coap] trusted_sources` and `echo = "off"` are for. Worse, its table of response codes has no
4.01, so it cannot even parse the gateway's Echo challenge: it drops the datagram, retransmits,
and gives up. The request is built as ACME's own CoAP client builds a RETRIEVE
(acmecse/plugins/bindings/CoAPServer.py, sendRequest): ACME's oneM2M option registry, a
confirmable GET with Uri-Path from toCoAPPath, Content-Format JSON, fr, rqi, rvi and ot, sent
with HelperClient.send_request and a timeout. The socket handed to CoAPthon (as ACME hands it
one) records every datagram received, so that what CoAPthon dropped can be shown.

Usage:  interop_coapthon.py HOST:PORT TARGET [--origin O] [--timeout S] [--bind IP]
        e.g. interop_coapthon.py 127.0.0.1:18412 /id-in/cse-in --origin CAdmin
Output: one line: "<code> <rsc or -> <resource type and id, or payload text>" for the answer
        CoAPthon returned, e.g. "2.05 2000 m2m:cb /id-in"; or "ERR no answer within S s",
        followed by "(dropped by CoAPthon: <code>[ echo], ...)" when datagrams came that it
        could not parse, e.g. "ERR no answer within 5 s (dropped by CoAPthon: 4.01 echo)".
Exit status 0 when CoAPthon returned an answer, 1 when it did not, 2 on a usage error.
"""

import argparse
import json
import logging
import os
import socket
import sys
import time
import uuid

from coapthon import defines
from coapthon.client.helperclient import HelperClient
from coapthon.messages.request import Request
from coapthon.serializer import Serializer

from acmecse.etc.RequestUtils import toCoAPPath
from acmecse.helpers.CoAPthonTools import newCoAPOption, registerOneM2MContentTypes, registerOneM2MOptions

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_coap_scenario import code_text, decode  # noqa: E402  (same directory)

ECHO = 252
RSC = 307


class RecordingSocket:
    """A UDP socket that keeps every datagram it receives; CoAPthon uses only these calls."""

    def __init__(self, family, bind):
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        if bind:
            self.sock.bind((bind, 0))
        self.received = []

    def recvfrom(self, size):
        datagram, addr = self.sock.recvfrom(size)
        self.received.append(datagram)
        return datagram, addr

    def sendto(self, data, addr):
        return self.sock.sendto(data, addr)

    def settimeout(self, t):
        self.sock.settimeout(t)

    def setsockopt(self, *a):
        self.sock.setsockopt(*a)

    def close(self):
        self.sock.close()


def request(server, target, origin):
    """The RETRIEVE as ACME's sendRequest makes it."""
    r = Request()
    r.destination = server
    r.type = defines.Types["CON"]
    r.code = defines.Codes.GET.number
    r.uri_path = toCoAPPath(target)
    registry = defines.OptionRegistry
    r.add_option(newCoAPOption(registry.CONTENT_TYPE.number, defines.Content_types["application/json"]))
    r.add_option(newCoAPOption(registry.oneM2M_FR.number, origin))
    r.add_option(newCoAPOption(registry.oneM2M_RQI.number, f"coapthon-{uuid.uuid4().hex[:12]}"))
    r.add_option(newCoAPOption(registry.oneM2M_RVI.number, "4"))
    r.add_option(newCoAPOption(registry.oneM2M_OT.number, time.strftime("%Y%m%dT%H%M%S", time.gmtime())))
    return r


def describe(response):
    """The answer CoAPthon returned: code, rsc, and the resource it carries."""
    rsc = next((str(o.value) for o in response.options if o.number == RSC), "-")
    payload = response.payload or b""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    try:
        content = json.loads(text)
        key = next(iter(content))
        detail = f"{key} {content[key].get('csi') or content[key].get('ri', '')}".strip()
    except (ValueError, StopIteration, AttributeError):
        detail = text
    return f"{code_text(response.code)} {rsc} {detail}".rstrip()


def dropped(datagrams):
    """The datagrams CoAPthon could not parse, as code and whether they carried Echo."""
    out = []
    for datagram in datagrams:
        if not isinstance(Serializer.deserialize(datagram, ("", 0)), int):
            continue  # CoAPthon parsed this one
        try:
            _, code, _, _, options, _ = decode(datagram)
        except (ValueError, IndexError):
            out.append("unparsable")
            continue
        echo = " echo" if any(number == ECHO for number, _ in options) else ""
        out.append(code_text(code) + echo)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server", help="HOST:PORT of the CoAP server (the gateway)")
    parser.add_argument("target", help="oneM2M target, e.g. /id-in/cse-in")
    parser.add_argument("--origin", default="CAdmin")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds CoAPthon waits")
    parser.add_argument("--bind", help="local address to send from, e.g. 127.0.0.2")
    args = parser.parse_args()
    host, _, port = args.server.rpartition(":")
    if not host or not port.isdigit():
        print(f"ERR {args.server!r} is not HOST:PORT", flush=True)
        return 2
    logging.basicConfig(level=logging.CRITICAL)  # CoAPthon warns about every unknown option
    registerOneM2MOptions()
    registerOneM2MContentTypes()
    server = (host, int(port))
    sock = RecordingSocket(socket.getaddrinfo(host, None)[0][0], args.bind)
    client = HelperClient(server=server, sock=sock)
    try:
        response = client.send_request(request(server, args.target, args.origin), timeout=args.timeout)
    finally:
        client.stop()
    if response is not None:
        print(describe(response), flush=True)
        return 0
    lost = dropped(sock.received)
    detail = f" (dropped by CoAPthon: {', '.join(lost)})" if lost else ""
    print(f"ERR no answer within {args.timeout:g} s{detail}", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
