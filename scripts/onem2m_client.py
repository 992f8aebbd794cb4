"""What the interop scenario clients share (Python 3 standard library only).

The one oneM2M scenario that scripts/interop, scripts/interop_mqtt and scripts/interop_coap run
against ACME directly and through the gateway, whatever the binding; the normaliser that makes
one run's answers comparable with another's; running the scenario; and the step files the
clients write and their "compare" and "step" subcommands read. Imported by
interop_scenario.py (HTTP), interop_coap_scenario.py and interop_mqtt_scenario.py; not run on
its own.
"""

import json
import re
import sys
from collections import namedtuple

RELEASE = "4"
ADMIN = "CAdmin"
AE1_ORIGIN = "Cinterop1"
AE2_ORIGIN = "Cinterop2"
CSE = "/id-in/cse-in"

# Attributes whose values differ from run to run: replaced by stable per-run symbols, so that
# the structure (which resource is whose parent, etc.) is still compared.
ID_KEYS = {"ri", "pi", "aei", "csi", "cr"}
TIMESTAMP = re.compile(r"\d{8}T\d{6}(,\d+)?")

# op of TS-0004 for each HTTP method the scenario uses.
OPS = {"POST": 1, "GET": 2, "PUT": 3, "DELETE": 4}

# One step: its name, the originator, the HTTP method (the operation), the target as a request
# primitive's "to" (SP-relative "/id-in/...", or CSE-relative "cse-in/..."), ty, the content,
# the filter criteria (fc, or None), and the rsc it must be answered with.
Step = namedtuple("Step", "name origin method to ty content fc rsc")


def scenario_steps(prefix):
    """The scenario's steps, in order.

    Both SP-relative and CSE-relative targets are used, as the gateway normalises them for its
    policy but must forward them unchanged.
    """
    ae1, ae2 = f"{prefix}ae1", f"{prefix}ae2"
    cnt = f"{CSE}/{ae1}/cnt"

    def ae(rn):  # empty lists (e.g. "poa": []) are refused by ACME: leave them out
        return {"m2m:ae": {"rn": rn, "api": "Nacme", "rr": True, "srv": ["3"]}}

    def cin(i):
        return {"m2m:cin": {"rn": f"cin{i}", "cnf": "text/plain:0", "con": f"reading-{i}"}}

    def step(name, origin, method, to, rsc, ty=None, content=None, fc=None):
        return Step(name, origin, method, to, ty, content, fc, rsc)

    return [
        step("create AE1", AE1_ORIGIN, "POST", CSE, 2001, 2, ae(ae1)),
        step("create AE2 (CSE-relative)", AE2_ORIGIN, "POST", "cse-in", 2001, 2, ae(ae2)),
        step("create container", AE1_ORIGIN, "POST", f"{CSE}/{ae1}", 2001, 3,
             {"m2m:cnt": {"rn": "cnt", "mni": 10}}),
        *[step(f"create contentInstance {i}", AE1_ORIGIN, "POST", cnt, 2001, 4, cin(i))
          for i in (1, 2, 3)],
        step("retrieve latest", AE1_ORIGIN, "GET", f"{cnt}/la", 2000),
        # An update carries no ty: ACME refuses ty outside CREATE.
        step("update container", AE1_ORIGIN, "PUT", cnt, 2004,
             content={"m2m:cnt": {"lbl": ["interop:updated"]}}),
        step("retrieve container (CSE-relative)", AE1_ORIGIN, "GET", f"cse-in/{ae1}/cnt", 2000),
        step("discover contentInstances", AE1_ORIGIN, "GET", f"{CSE}/{ae1}", 2000,
             fc={"fu": 1, "ty": [4]}),
        # The gateway's policy permits this; ACME's own ACPs must still refuse it.
        step("other originator refused by ACME", AE2_ORIGIN, "GET", cnt, 4103),
        step("delete latest contentInstance", AE1_ORIGIN, "DELETE", f"{cnt}/la", 2002),
        step("retrieve oldest", AE1_ORIGIN, "GET", f"{cnt}/ol", 2000),
        step("delete container", AE1_ORIGIN, "DELETE", cnt, 2002),
        step("delete AE2", AE2_ORIGIN, "DELETE", f"{CSE}/{ae2}", 2002),
        step("delete AE1", AE1_ORIGIN, "DELETE", f"{CSE}/{ae1}", 2002),
        step("admin finds AE1 gone", ADMIN, "GET", f"{CSE}/{ae1}", 4004),
    ]


def path_of(step):
    """The step's target as an HTTP (or CoAP) path: SP-relative "/~/id-in/...", CSE-relative
    "/cse-in/...", with the filter criteria as the query."""
    path = f"/~{step.to}" if step.to.startswith("/") else f"/{step.to}"
    if step.fc:
        query = [f"{key}={v}" for key, value in step.fc.items()
                 for v in (value if isinstance(value, list) else [value])]
        path += "?" + "&".join(query)
    return path


def debug_text(body):
    """The m2m:dbg of a JSON answer, or the text of a plain one ("" for anything else)."""
    if isinstance(body, dict):
        return str(body.get("m2m:dbg", ""))
    return (body or "").strip() if isinstance(body, str) else ""


class Normaliser:
    """Makes one run's answers comparable with another's.

    Timestamps become "<ts>"; the run's name prefix becomes "<prefix>"; values of ID_KEYS become
    "<id:N>", numbered in order of first appearance, and so do their occurrences inside other
    strings (paths, debug messages). Discovery lists are sorted.
    """

    def __init__(self, prefix):
        self.prefix = prefix
        self.symbols = {}

    def step(self, name, method, path, resp):
        if isinstance(resp.body, (dict, list)):
            self._collect(resp.body)
        return {
            "step": name,
            "request": f"{method} {path.replace(self.prefix, '<prefix>')}",
            "status": resp.status,
            "rsc": resp.rsc,
            "rqi_echoed": resp.headers.get("X-M2M-RI") == resp.sent_rqi,
            "rvi": resp.headers.get("X-M2M-RVI"),
            "content_type": resp.headers.get("Content-Type"),
            "body": self._value(None, resp.body),
        }

    def _collect(self, value):
        if isinstance(value, dict):
            for key in sorted(value):
                item = value[key]
                if key in ID_KEYS and isinstance(item, str) and item not in self.symbols:
                    self.symbols[item] = f"<id:{len(self.symbols) + 1}>"
                self._collect(item)
        elif isinstance(value, list):
            for item in value:
                self._collect(item)

    def _text(self, text):
        text = TIMESTAMP.sub("<ts>", text)
        text = text.replace(self.prefix, "<prefix>")
        for raw in sorted(self.symbols, key=len, reverse=True):  # longest first: no partial hits
            text = text.replace(raw, self.symbols[raw])
        return text

    def _value(self, key, value):
        if isinstance(value, dict):
            return {k: self._value(k, v) for k, v in value.items()}
        if isinstance(value, list):
            items = [self._value(key, v) for v in value]
            return sorted(items) if key == "m2m:uril" else items
        if isinstance(value, str):
            if key in ID_KEYS and value in self.symbols:
                return self.symbols[value]
            return self._text(value)
        return value


def run(prefix, send, cleanup):
    """Runs the scenario: send(step) is (method, target, answer), as the step file shows the
    request; the answer has status, rsc, headers, body, sent_rqi and debug_text(). cleanup(steps)
    runs at the end, however it ends. Returns the normalised steps and the unexpected answers."""
    norm = Normaliser(prefix)
    steps, problems = [], []
    try:
        for step in scenario_steps(prefix):
            method, target, answer = send(step)
            steps.append(norm.step(step.name, method, target, answer))
            if answer.rsc != str(step.rsc):
                problems.append(f"{step.name}: expected rsc {step.rsc}, got {answer.status} "
                                f"{answer.rsc} {answer.debug_text()}")
    finally:
        cleanup(steps)
    return steps, problems


def run_requests(client, prefix):
    """The scenario over a client with request(method, path, origin, ty, content) (HTTP, CoAP)."""

    def send(step):
        path = path_of(step)
        return step.method, path, client.request(step.method, path, step.origin, step.ty,
                                                 step.content)

    return run(prefix, send, lambda steps: cleanup(client, prefix, steps))


def cleanup(client, prefix, steps):
    """ACME's database outlives one run: remove the AEs a failed run left behind, as the admin.
    Each AE's resource id is its originator, so a leftover AE would break the next run."""
    deleted = {s["step"] for s in steps if s["rsc"] == "2002"}
    for ae, step in ((f"{prefix}ae1", "delete AE1"), (f"{prefix}ae2", "delete AE2")):
        if step not in deleted:
            try:
                client.request("DELETE", f"/~{CSE}/{ae}", ADMIN)
            except OSError:
                pass


def scenario_command(out, run_it, errors=(OSError,)):
    """The "scenario" subcommand: run_it() → steps written to `out`, unexpected answers on
    stderr, a count line; exit 1 when any step was unexpected or `errors` aborted the run."""
    try:
        steps, problems = run_it()
    except errors as e:
        print(f"scenario aborted: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    with open(out, "w", encoding="utf-8") as f:
        json.dump(steps, f, indent=1, sort_keys=True)
        f.write("\n")
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(steps)} steps, {len(problems)} unexpected")
    return 1 if problems else 0


def request_command(send, errors, whole_json=False):
    """The "request" subcommand: send() → one line, "<status> <rsc or -> <debug text>" (with
    whole_json a JSON body whole instead of its m2m:dbg), or "ERR <exception>" when `errors`
    say that no answer came. Exit 0 either way."""
    try:
        answer = send()
    except errors as e:
        print(f"ERR {type(e).__name__}: {e}")
        return 0
    body = getattr(answer, "body", None)
    text = json.dumps(body) if whole_json and isinstance(body, dict) else answer.debug_text()
    print(f"{answer.status} {answer.rsc or '-'} {text}".rstrip())
    return 0


def load_steps(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"cannot read steps: {e}") from None


def cmd_compare(args):
    expected, actual = load_steps(args.expected), load_steps(args.actual)
    diffs = []
    if len(expected) != len(actual):
        diffs.append(f"{len(expected)} steps != {len(actual)} steps")
    for want, got in zip(expected, actual):
        for key in sorted(set(want) | set(got)):
            if want.get(key) != got.get(key):
                diffs.append(f"{want.get('step')}: {key} {json.dumps(want.get(key))[:120]} "
                             f"!= {json.dumps(got.get(key))[:120]}")
    more = f" (+{len(diffs) - 3} more)" if len(diffs) > 3 else ""
    print("; ".join(diffs[:3]) + more if diffs else "identical")
    return 1 if diffs else 0


def cmd_step(args):
    found = [s for s in load_steps(args.file) if s["step"] == args.name]
    if not found:
        print(f"no step {args.name!r}")
        return 1
    step = found[0]
    debug = step["body"].get("m2m:dbg", "") if isinstance(step["body"], dict) else ""
    print(f"{step['status']} {step['rsc'] or '-'} {debug}".rstrip())
    return 0


def add_step_commands(sub):
    """The "compare" and "step" subcommands on an argparse subparsers object."""
    c = sub.add_parser("compare", help="compare two step files")
    c.add_argument("expected")
    c.add_argument("actual")
    c.set_defaults(func=cmd_compare)

    t = sub.add_parser("step", help="print one step of a step file")
    t.add_argument("file")
    t.add_argument("name")
    t.set_defaults(func=cmd_step)
