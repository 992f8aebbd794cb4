#!/usr/bin/env python3
"""Structural check of the shipped Grafana dashboard (config/monitoring/grafana-dashboard.json).

Usage:  scripts/dashboard_check.py [DASHBOARD [METRICS_DOC]]
        (defaults: config/monitoring/grafana-dashboard.json, docs/metrics.md)

Checks, each one line "ok ..." or "FAIL ...", then "N passed, M failed" (exit 1 on a failure):
valid JSON with title, uid, schemaVersion and panels; every panel has a unique id, a type, a
title, a datasource and a gridPos inside Grafana's 24 columns, overlapping no other panel;
every target has a unique refId and a PromQL expr; every variable an expr or datasource uses
($instance, ${datasource}; Grafana's own $__... aside) is defined under templating; and every
m2mguard series an expr names is a metric docs/metrics.md lists (a histogram's _bucket, _sum
and _count count as the histogram). Standard library only.
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERIES = re.compile(r"\bm2mguard_[a-z0-9_]+")
DOC_METRIC = re.compile(r"^\|\s*`(m2mguard_[a-z0-9_]+)`\s*\|", re.M)
VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
HISTOGRAM_PARTS = ("_bucket", "_sum", "_count")


class Tally:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"ok    {what}")
        else:
            self.failed += 1
            print(f"FAIL  {what}: {detail}")


def documented(doc):
    return set(DOC_METRIC.findall(Path(doc).read_text()))


def series_known(name, known):
    if name in known:
        return True
    return any(name.endswith(p) and name[: -len(p)] in known for p in HISTOGRAM_PARTS)


def overlaps(a, b):
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def check_panels(t, panels, variables, known):
    ids = [p.get("id") for p in panels]
    t.check(len(ids) == len(set(ids)) and None not in ids, "panel ids unique", str(ids))
    boxes = []
    for p in panels:
        name = f"panel {p.get('id')} {p.get('title')!r}"
        grid = p.get("gridPos", {})
        fits = (all(isinstance(grid.get(k), int) for k in "hwxy")
                and grid["w"] > 0 and grid["h"] > 0 and grid["x"] >= 0 and grid["x"] + grid["w"] <= 24)
        t.check(bool(p.get("type") and p.get("title") and p.get("datasource")) and fits,
                f"{name}: type, title, datasource, gridPos within 24 columns", json.dumps(grid))
        if fits:
            clash = [q for q, box in boxes if overlaps(box, grid)]
            t.check(not clash, f"{name}: overlaps no other panel", f"overlaps {clash}")
            boxes.append((p.get("id"), grid))
        targets = p.get("targets") or []
        refs = [x.get("refId") for x in targets]
        t.check(targets and len(refs) == len(set(refs)) and all(x.get("expr") for x in targets),
                f"{name}: targets with unique refIds and exprs", str(refs))
        text = json.dumps(p.get("datasource")) + " ".join(x.get("expr", "") for x in targets)
        used = {v for v in VARIABLE.findall(text) if not v.startswith("__")}
        t.check(used <= variables, f"{name}: variables defined", str(sorted(used - variables)))
        names = {s for x in targets for s in SERIES.findall(x.get("expr", ""))}
        unknown = sorted(n for n in names if not series_known(n, known))
        t.check(names and not unknown, f"{name}: series in docs/metrics.md ({len(names)})",
                f"not documented: {unknown}" if unknown else "names no m2mguard series")


def main():
    dashboard = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "config/monitoring/grafana-dashboard.json"
    doc = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs/metrics.md"
    t = Tally()
    try:
        dash = json.loads(dashboard.read_text())
    except (OSError, ValueError) as e:
        t.check(False, f"{dashboard.name} is valid JSON", str(e))
        dash = None
    if isinstance(dash, dict):
        t.check(True, f"{dashboard.name} is valid JSON")
        missing = [k for k in ("title", "uid", "schemaVersion", "panels") if k not in dash]
        t.check(not missing, "title, uid, schemaVersion, panels present", str(missing))
        variables = {v.get("name") for v in dash.get("templating", {}).get("list", [])}
        known = documented(doc)
        t.check(bool(known), f"{doc.name} lists metrics ({len(known)})")
        check_panels(t, dash.get("panels") or [], variables, known)
    elif dash is not None:
        t.check(False, f"{dashboard.name} is a JSON object", type(dash).__name__)
    print(f"{t.passed} passed, {t.failed} failed")
    sys.exit(1 if t.failed else 0)


if __name__ == "__main__":
    main()
