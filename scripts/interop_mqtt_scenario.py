#!/usr/bin/env python3
"""oneM2M-over-MQTT client for scripts/interop_mqtt (paho-mqtt from the ACME venv).

Subcommands:

  scenario HOST:PORT --prefix P --out FILE
      Runs the interop scenario (the one of scripts/onem2m_client.py, as TS-0010 request
      primitives) against a broker — mosquitto with ACME behind it, or the gateway in front of
      it — and writes its steps, normalised, as JSON to FILE, in the step format that
      "interop_scenario.py compare" and "step" read. Exit 0 when every step answered with the
      expected rsc.

  request HOST:PORT --origin O [--client-id ID] [--fr FR] [--topic-origin T]
                    [--op N] [--to TO] [--ty N] [--body JSON] [--raw TEXT]
      Sends one request primitive on /oneM2M/req/<T>/id-in/json from a session bound to O (client
      id A::O unless --client-id) and prints "<rsc> <m2m:dbg>" of the answer on
      /oneM2M/resp/<T>/id-in/json, "NO-ANSWER" after 5 s, or "REFUSED <code>" when CONNECT was.

  register HOST:PORT --origin O --rn RN [--no-fr]
      Registers an AE named RN from a session that is not a node yet (client id A::O, O being
      C, S or a chosen id) on /oneM2M/reg_req/O/id-in/json, fr O (absent with --no-fr); then,
      in the same session, retrieves its AE and deletes it (deregisters) as the assigned AE-ID.
      Prints "<rsc> <aei> <rsc of the retrieve> <rsc of the delete>" ("-" for what did not
      happen), or "REFUSED <code>".

  hold HOST:PORT --origin O --seconds N [--client-id ID --username O]
      Keeps a session bound to O open (client id A::O, or ID bound by the username); prints "closed after <s>" when the far end closes it, or
      "open" after N seconds.

Every originator has its own connection, client id "A::<originator>": the gateway binds each
connection to one originator.
"""

import argparse
import itertools
import json
import os
import queue
import sys
import time

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onem2m_client as scenario  # noqa: E402  (same directory)
from onem2m_client import ADMIN, AE1_ORIGIN, AE2_ORIGIN, CSE  # noqa: E402

TIMEOUT_S = 10
RECEIVER = "id-in"


# paho-mqtt 2 reports MQTT 3.1.1 CONNACK codes as MQTT 5 reason codes: back to 3.1.1 terms.
V5_TO_V311 = {0: 0, 132: 1, 133: 2, 136: 3, 134: 4, 135: 5}


def connack_code(rc):
    value = int(getattr(rc, "value", rc))
    return V5_TO_V311.get(value, value)


def new_client(client_id):
    try:
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                           protocol=mqtt.MQTTv311)
    except AttributeError:  # paho-mqtt 1.x
        return mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv311)


class Session:
    """One MQTT connection bound to one originator, subscribed to its response topic."""

    def __init__(self, addr, origin, client_id=None, topic_origin=None, username=None,
                 registration=False):
        self.origin = origin
        # TS-0010 registration topics (reg_req / reg_resp) instead of req / resp.
        self.kind = "reg_" if registration else ""
        self.topic_origin = topic_origin or origin
        self.answers = queue.Queue()
        self.connack = queue.Queue()
        self.closed = queue.Queue()
        self.suback = queue.Queue()
        host, port = addr.rsplit(":", 1)
        self.client = new_client(client_id or f"A::{origin}")
        if username:
            self.client.username_pw_set(username)
        self.client.on_connect = lambda c, u, f, rc, *p: self.connack.put(connack_code(rc))
        self.client.on_message = lambda c, u, m: self.answers.put(m)
        self.client.on_subscribe = lambda c, u, mid, codes, *p: self.suback.put(
            [int(getattr(x, "value", x)) for x in codes])
        self.client.on_disconnect = lambda c, u, *a: self.closed.put(time.monotonic())
        self.client.connect(host, int(port), keepalive=30)
        self.client.loop_start()
        try:
            self.code = self.connack.get(timeout=TIMEOUT_S)
        except queue.Empty:
            self.code = "no CONNACK"
        if self.code == 0:
            # The gateway answers its own refusals on the session's response topic, the CSE on
            # the request topic's: listen on both.
            for origin in dict.fromkeys([self.origin, self.topic_origin]):
                self.client.subscribe(self.response_topic(origin), qos=1)
                self.suback.get(timeout=TIMEOUT_S)

    def response_topic(self, origin):
        return f"/oneM2M/{self.kind}resp/{origin}/{RECEIVER}/json"

    def request(self, primitive, raw=None):
        """Publishes one request; the answer with its rqi, or None after the timeout."""
        payload = raw if raw is not None else json.dumps(primitive)
        topic = f"/oneM2M/{self.kind}req/{self.topic_origin}/{RECEIVER}/json"
        self.client.publish(topic, payload, qos=1)
        deadline = time.monotonic() + (TIMEOUT_S if raw is None else 5)
        while time.monotonic() < deadline:
            try:
                msg = self.answers.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            try:
                answer = json.loads(msg.payload)
            except ValueError:
                continue
            if raw is not None or answer.get("rqi") == primitive.get("rqi"):
                return answer
        return None

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class Answer:
    """An MQTT answer in the shape Normaliser.step reads (status, headers, body)."""

    def __init__(self, answer, rqi):
        self.status = "mqtt" if answer is not None else "no answer"
        self.sent_rqi = rqi
        answer = answer or {}
        self.rsc = str(answer["rsc"]) if "rsc" in answer else None
        self.headers = {"X-M2M-RI": answer.get("rqi"), "X-M2M-RVI": answer.get("rvi"),
                        "Content-Type": None}
        self.body = answer.get("pc")

    def debug_text(self):
        return json.dumps(self.body)[:200]


def run_scenario(addr, prefix):
    counter = itertools.count(1)
    rqi_prefix = f"mqtt-interop-{os.getpid()}-{int(time.time() * 1000)}"
    sessions = {o: Session(addr, o) for o in (ADMIN, AE1_ORIGIN, AE2_ORIGIN)}
    for origin, s in sessions.items():
        if s.code != 0:
            raise SystemExit(f"CONNECT as {origin} refused: {s.code}")

    def send(step):
        rqi = f"{rqi_prefix}-{next(counter)}"
        op = scenario.OPS[step.method]
        primitive = {"op": op, "to": step.to, "fr": step.origin, "rqi": rqi,
                     "rvi": scenario.RELEASE}
        if step.fc:
            primitive["fc"] = step.fc
        if step.ty is not None:
            primitive["ty"] = step.ty
        if step.content is not None:
            primitive["pc"] = step.content
        return str(op), step.to, Answer(sessions[step.origin].request(primitive), rqi)

    def cleanup(_steps):
        for ae in (f"{prefix}ae1", f"{prefix}ae2"):  # leftovers of a failed run
            sessions[ADMIN].request({"op": 4, "to": f"{CSE}/{ae}", "fr": ADMIN,
                                     "rqi": f"{rqi_prefix}-cleanup-{ae}",
                                     "rvi": scenario.RELEASE})
        for s in sessions.values():
            s.close()

    return scenario.run(prefix, send, cleanup)


def cmd_scenario(args):
    return scenario.scenario_command(args.out, lambda: run_scenario(args.addr, args.prefix), ())


def cmd_request(args):
    s = Session(args.addr, args.origin, args.client_id, args.topic_origin, args.username,
                args.registration)
    if s.code != 0:
        print(f"REFUSED {s.code}")
        return 0
    primitive = {"op": args.op, "to": args.to, "fr": args.fr or args.origin,
                 "rqi": f"req-{os.getpid()}", "rvi": "4"}
    if args.ty is not None:
        primitive["ty"] = args.ty
    if args.body is not None:
        primitive["pc"] = json.loads(args.body)
    answer = s.request(primitive, args.raw)
    s.close()
    if answer is None:
        print("NO-ANSWER")
    else:
        debug = answer.get("pc", {}).get("m2m:dbg", "") if isinstance(answer.get("pc"), dict) else ""
        print(f"{answer.get('rsc')} {debug}".rstrip())
    return 0


def cmd_register(args):
    s = Session(args.addr, args.origin, registration=True)
    if s.code != 0:
        print(f"REFUSED {s.code}")
        return 0
    primitive = {"op": 1, "to": CSE, "rqi": f"reg-{os.getpid()}", "rvi": "4", "ty": 2,
                 "pc": {"m2m:ae": {"rn": args.rn, "api": "Nacme", "rr": True, "srv": ["3"]}}}
    if not args.no_fr:
        primitive["fr"] = args.origin
    answer = s.request(primitive) or {}
    rsc = answer.get("rsc", "-")
    pc = answer.get("pc") if isinstance(answer.get("pc"), dict) else {}
    aei = pc.get("m2m:ae", {}).get("aei") or "-"
    results = [str(rsc), aei]
    if aei != "-":
        # The same session, bound to the assigned id now: its own response topic and requests.
        s.kind, s.topic_origin = "", aei
        s.client.subscribe(s.response_topic(aei), qos=1)
        s.suback.get(timeout=TIMEOUT_S)
        own = f"{CSE}/{args.rn}"
        for op, rqi in [(2, "own"), (4, "bye")]:
            got = s.request({"op": op, "to": own, "fr": aei, "rqi": f"{rqi}-{os.getpid()}",
                             "rvi": "4"}) or {}
            results.append(str(got.get("rsc", "-")))
    s.close()
    print(" ".join(results))
    return 0


def cmd_hold(args):
    s = Session(args.addr, args.origin, args.client_id, username=args.username)
    if s.code != 0:
        print(f"REFUSED {s.code}")
        return 0
    print("connected", flush=True)
    started = time.monotonic()
    try:
        s.closed.get(timeout=args.seconds)
        print(f"closed after {time.monotonic() - started:.1f}")
    except queue.Empty:
        print("open")
    s.client.loop_stop()
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("scenario")
    s.add_argument("addr")
    s.add_argument("--prefix", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_scenario)
    r = sub.add_parser("request")
    r.add_argument("addr")
    r.add_argument("--origin", required=True)
    r.add_argument("--client-id")
    r.add_argument("--username")
    r.add_argument("--fr")
    r.add_argument("--topic-origin")
    r.add_argument("--op", type=int, default=2)
    r.add_argument("--to", default=CSE)
    r.add_argument("--ty", type=int)
    r.add_argument("--body")
    r.add_argument("--raw", help="publish this text instead of a primitive")
    r.add_argument("--registration", action="store_true",
                   help="publish on /oneM2M/reg_req/..., await the answer on reg_resp")
    r.set_defaults(func=cmd_request)
    g = sub.add_parser("register")
    g.add_argument("addr")
    g.add_argument("--origin", required=True)
    g.add_argument("--rn", required=True)
    g.add_argument("--no-fr", action="store_true")
    g.set_defaults(func=cmd_register)
    h = sub.add_parser("hold")
    h.add_argument("addr")
    h.add_argument("--origin", required=True)
    h.add_argument("--seconds", type=float, default=10)
    h.add_argument("--client-id", help="instead of A::<origin>: two sessions on one broker")
    h.add_argument("--username")
    h.set_defaults(func=cmd_hold)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
