#!/usr/bin/env python3
"""The authority's operator console in a real headless browser (Debian's chromium driven through
chromium-driver by selenium), against a running authority and a gateway following its feed.
Started by scripts/console_check, which sets everything up; this part is the operator's side.

Steps (each prints "ok  <check>" or "FAIL <check>: <detail>"):
  the page's own headers (CSP, X-Frame-Options) and no data in it before signing in;
  a wrong token refused with a clear error, and no data shown;
  the right token: nodes, gateways (confirmed seq, behind head, last ack), reports ("no reports"
  while none has arrived);
  forged check values as one node through the gateway, each refused, until the gateway's
  [[reports.rules]] makes a report: its row in the panel within 20 s (gateway, node, counts by
  stage, reason, rule), and nothing the requests carried in the panel's markup (content,
  request id, check value) nor the token;
  a node whose id is markup shown as text (no element made from it, no script run);
  the filter finds one node; Deactivate, then Cancel: nothing published; Deactivate, Confirm:
  the gateway refuses that node (403 4103) while another node passes (200 2000);
  the gateway's confirmed seq catches up with the head; a screenshot; Activate with the
  confirmation: the node passes again; the gateway deactivated from its row refuses every
  request, activated serves again; signing out forgets the token.

Usage: console_check.py --console URL --token-file FILE --gateway URL --gateway-id ID
       --spki BASE64 --driver-port PORT --screenshot PATH --ca FILE --allowed NODE
       --target NODE --markup NODE --reported NODE --report-rule NAME --report-count N
The browser trusts the authority's certificate by its public key (--spki: Chromium's
--ignore-certificate-errors-spki-list), nothing else; the token is read from its file and
never printed.
"""

import argparse
import json
import ssl
import sys
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 15
FAILED = 0


def ok(name):
    print(f"ok  {name}", flush=True)


def fail(name, detail):
    global FAILED
    FAILED += 1
    print(f"FAIL {name}: {detail}", flush=True)


def expect(name, want, got):
    if want == got:
        ok(name)
    else:
        fail(name, f"expected {want!r}, got {got!r}")


def outcome(request):
    """What the gateway answered a oneM2M request: "HTTP-STATUS RSC"."""
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return f"{r.status} {r.headers.get('X-M2M-RSC')}"
    except urllib.error.HTTPError as e:
        return f"{e.code} {e.headers.get('X-M2M-RSC')}"


def retrieve(gateway, origin):
    """A oneM2M retrieve through the gateway: "HTTP-STATUS RSC"."""
    request = urllib.request.Request(
        gateway,
        headers={
            "X-M2M-Origin": origin,
            "X-M2M-RI": f"con-{time.monotonic_ns()}",
            "X-M2M-RVI": "3",
            "Accept": "application/json",
        },
    )
    return outcome(request)


def forged(gateway, origin, n, secrets):
    """A oneM2M create through the gateway as `origin` with a check value no key made (and
    content, a request id and a check value that must never reach a report): "HTTP-STATUS RSC"."""
    request = urllib.request.Request(
        gateway,
        method="POST",
        data=json.dumps({"m2m:cin": {"con": secrets["content"]}}).encode(),
        headers={
            "X-M2M-Origin": origin,
            "X-M2M-RI": f"{secrets['rqi']}-{n}",
            "X-M2M-RVI": "3",
            "X-M2M-AS": secrets["check_value"],
            "Content-Type": "application/json;ty=4",
            "Accept": "application/json",
        },
    )
    return outcome(request)


def until(predicate, seconds=WAIT_S):
    """Polls predicate every 0.25 s until it is truthy; its last value."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.25)


def page_headers(console, ca):
    context = ssl.create_default_context(cafile=ca)
    with urllib.request.urlopen(console, context=context, timeout=5) as r:
        return r.status, r.headers, r.read().decode()


def browser(args):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",  # the reports panel in the screenshot too
        f"--ignore-certificate-errors-spki-list={args.spki}",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path="/usr/bin/chromedriver", port=args.driver_port)
    return webdriver.Chrome(service=service, options=options)


class Console:
    def __init__(self, driver):
        self.d = driver

    def wait(self, predicate, seconds=WAIT_S):
        try:
            # The page redraws its tables every 5 s: a row read across a redraw goes stale.
            return WebDriverWait(
                self.d, seconds, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
            ).until(lambda _: predicate())
        except TimeoutException:
            return None

    def by_id(self, element_id):
        return self.d.find_element(By.ID, element_id)

    def visible(self, element_id):
        return self.by_id(element_id).is_displayed()

    def text(self, element_id):
        return self.by_id(element_id).text

    def rows(self, table):
        """Each visible row of a table's body as its cells' texts."""
        for _ in range(5):  # as in cells
            try:
                return [
                    [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                    for tr in self.d.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
                ]
            except StaleElementReferenceException:
                time.sleep(0.1)
        return []

    def row(self, table, row_id):
        for tr in self.d.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr"):
            if tr.get_attribute("data-id") == row_id:
                return tr
        return None

    def cells(self, table, row_id):
        for _ in range(5):  # a redraw between finding the row and reading it: read again
            try:
                tr = self.row(table, row_id)
                return [td.text for td in tr.find_elements(By.TAG_NAME, "td")] if tr else None
            except StaleElementReferenceException:
                time.sleep(0.1)
        return None

    def sign_in(self, token):
        field = self.by_id("token")
        field.clear()
        field.send_keys(token)
        self.by_id("login-button").click()

    def action(self, table, row_id, label):
        for attempt in range(5):  # as in cells: a redraw may replace the button under us
            try:
                button = self.row(table, row_id).find_element(By.TAG_NAME, "button")
                if button.text != label:
                    raise AssertionError(f"{row_id}: the button says {button.text!r}, not {label!r}")
                button.click()
                break
            except StaleElementReferenceException:
                if attempt == 4:
                    raise
                time.sleep(0.1)
        self.wait(lambda: self.by_id("confirm").get_attribute("open") is not None, 5)
        return self.text("confirm-text")

    def answer_dialog(self, confirm):
        self.by_id("confirm-ok" if confirm else "confirm-cancel").click()
        self.wait(lambda: self.by_id("confirm").get_attribute("open") is None, 5)

    def status(self, table, row_id):
        cells = self.cells(table, row_id)
        return cells[1] if table == "gateways" else cells[2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("console", "token-file", "gateway", "gateway-id", "spki", "screenshot", "ca"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--driver-port", type=int, required=True)
    parser.add_argument("--allowed", required=True, help="a node whose requests pass")
    parser.add_argument("--target", required=True, help="the node to deactivate")
    parser.add_argument("--markup", required=True, help="a node id that is HTML")
    parser.add_argument("--reported", required=True, help="the node to send forged check values as")
    parser.add_argument("--report-rule", required=True, help="the gateway's [[reports.rules]] name")
    parser.add_argument("--report-count", type=int, required=True, help="its count")
    args = parser.parse_args()
    with open(args.token_file) as f:
        token = f.read().strip()

    status, headers, html = page_headers(args.console, args.ca)
    csp = headers.get("Content-Security-Policy", "")
    expect("GET /console without a credential: 200", 200, status)
    expect("X-Frame-Options: DENY", "DENY", headers.get("X-Frame-Options"))
    expect(
        "the CSP allows this origin only, no inline script, Trusted Types required",
        True,
        "default-src 'none'" in csp
        and "script-src 'self'" in csp
        and "frame-ancestors 'none'" in csp
        and "require-trusted-types-for 'script'" in csp
        and "unsafe" not in csp,
    )
    expect("the static page holds no data (no node id in it)", False, args.target in html)

    driver = browser(args)
    c = Console(driver)
    try:
        run(c, args, token)
    finally:
        errors = [
            e["message"]
            for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "401" not in e["message"] and "404" not in e["message"]
        ]
        expect("no CSP violation or script error in the browser's console", [], errors[:3])
        driver.quit()
    return 1 if FAILED else 0


def reports_panel(c, args, token):
    """Forged check values as args.reported through the gateway, the gateway's report of them
    delivered to the authority, and its row in the panel: ids, counts and names, nothing the
    requests carried."""
    secrets = {
        "content": f"con-secret-content-{time.monotonic_ns()}",
        "rqi": f"con-forged-rqi-{time.monotonic_ns()}",
        "check_value": "con-forged-k1.1.bm90IGEgcmVhbCBtYWMgYXQgYWxs",
    }
    answers = [forged(args.gateway, args.reported, n, secrets) for n in range(args.report_count)]
    expect(f"{args.report_count} forged check values as {args.reported}: each refused (403 4103)",
           ["403 4103"] * args.report_count, answers)
    # The gateway's outbox delivers the report; the panel shows it on a refresh (every 5 s).
    row = c.wait(lambda: next((r for r in c.rows("reports") if r[2] == args.reported), None), 20)
    expect("the report reaches the panel within 20 s: gateway, node", [args.gateway_id, args.reported],
           row[1:3] if row else None)
    expect("with the counts by stage, the reason and the gateway's rule",
           [f"check_value: {args.report_count}", "unknown_key", args.report_rule, ""],
           row[4:8] if row else None)
    expect("its window and the time received shown", True,
           bool(row) and " to " in row[3] and row[3].endswith("Z") and row[0].endswith("Z"))
    expect("the panel counts it", "newest 1", c.text("reports-count"))
    panel = c.d.execute_script("return document.getElementById('reports').closest('section').outerHTML")
    leaked = [name for name, value in [*secrets.items(), ("operator token", token)]
              if value in panel or value.split(".")[0] in panel]
    expect("and nothing secret in the panel's markup: no content, request id, check value, token",
           [], leaked)


def run(c, args, token):
    d = c.d
    d.get(args.console)
    c.wait(lambda: c.visible("login-view"))
    expect("the console opens on the sign-in form, no data shown", [True, False],
           [c.visible("login-view"), c.visible("console-view")])

    c.sign_in("wrong-" + "x" * 40)
    error = c.wait(lambda: c.visible("login-error") and c.text("login-error"))
    expect("a wrong token: a clear error, still signed out", True,
           bool(error) and "refused this token (401" in error and not c.visible("console-view"))
    expect("and the wrong token is not kept", None,
           d.execute_script("return sessionStorage.getItem('m2mguard.operator-token')"))

    c.sign_in(token)
    c.wait(lambda: c.visible("console-view") and c.row("nodes", args.target) is not None)
    expect("the right token: signed in, the nodes listed", True, c.row("nodes", args.target) is not None)
    cells = c.cells("nodes", args.allowed)
    expect(f"{args.allowed}: kind, status and groups shown", ["ae", "active", "operators"],
           cells[1:4] if cells else None)
    expect("the token is kept in this tab (sessionStorage), not in localStorage or a cookie",
           [True, 0, ""],
           d.execute_script("return [sessionStorage.getItem('m2mguard.operator-token') !== null,"
                            " localStorage.length, document.cookie]"))

    # Markup as a node id is text on the page: the cell shows it literally, nothing runs.
    expect("a node id that is markup is shown as text", args.markup,
           (c.cells("nodes", args.markup) or [None])[0])
    expect("and no element was made from it, no script ran", [0, None],
           d.execute_script("return [document.querySelectorAll('#nodes img, #nodes script').length,"
                            " window.__m2mguard_xss || null]"))

    gw = c.wait(lambda: (cells := c.cells("gateways", args.gateway_id)) and cells[3] == "up to date" and cells)
    expect(f"gateway {args.gateway_id}: active, its confirmed seq equal to the head's (up to date)",
           True, bool(gw) and gw[1] == "active" and f"head seq {gw[2]}," in c.text("head"))
    expect("and the age of its last ack shown", True, bool(gw) and gw[4].endswith("ago"))

    empty = c.wait(lambda: c.visible("reports-empty") and c.text("reports-empty"))
    expect("reports: none received yet, the panel says so", "no reports", empty)
    reports_panel(c, args, token)

    search = c.by_id("filter")
    search.send_keys(args.target)
    shown = c.wait(lambda: len(c.rows("nodes")) == 1 and c.rows("nodes"))
    expect(f"the filter finds {args.target} alone", args.target, shown[0][0] if shown else None)

    expect(f"{args.allowed} passes the gateway before", "200 2000", retrieve(args.gateway, args.allowed))
    expect(f"{args.target} passes the gateway before", "200 2000", retrieve(args.gateway, args.target))

    question = c.action("nodes", args.target, "Deactivate")
    expect("Deactivate asks first", f"Deactivate node {args.target}?", question)
    head_before = c.text("head")
    c.answer_dialog(confirm=False)
    time.sleep(1)
    expect("Cancel: nothing published, the node still active", ["active", head_before],
           [c.status("nodes", args.target), c.text("head")])

    c.action("nodes", args.target, "Deactivate")
    c.answer_dialog(confirm=True)
    status = c.wait(lambda: c.status("nodes", args.target) == "deactivated" and "deactivated")
    expect("Confirm: the node shows deactivated", "deactivated", status)
    expect("and the console says which record published it", True,
           "deactivated: published as record" in c.text("message"))
    refused = until(lambda: retrieve(args.gateway, args.target) == "403 4103")
    expect(f"the gateway refuses {args.target} (403 4103)", True, refused)
    expect(f"while {args.allowed} still passes", "200 2000", retrieve(args.gateway, args.allowed))
    gw = c.wait(lambda: (cells := c.cells("gateways", args.gateway_id)) and cells[3] == "up to date"
                and f"head seq {cells[2]}," in c.text("head") and cells)
    expect("the gateway's confirmed seq caught up with the new head on the next refresh", True, bool(gw))

    search.clear()
    search.send_keys(" ")  # an input event; whitespace alone filters nothing
    c.wait(lambda: len(c.rows("nodes")) == 3)
    d.save_screenshot(args.screenshot)
    ok(f"screenshot saved ({args.screenshot})")

    c.action("nodes", args.target, "Activate")
    c.answer_dialog(confirm=True)
    status = c.wait(lambda: c.status("nodes", args.target) == "active" and "active")
    expect("Activate with the confirmation: the node shows active", "active", status)
    passed = until(lambda: retrieve(args.gateway, args.target) == "200 2000")
    expect(f"and the gateway lets {args.target} through again (200 2000)", True, passed)

    question = c.action("gateways", args.gateway_id, "Deactivate")
    expect("Deactivate a gateway asks first", f"Deactivate gateway {args.gateway_id}?", question)
    c.answer_dialog(confirm=True)
    status = c.wait(lambda: c.status("gateways", args.gateway_id) == "deactivated" and "deactivated")
    expect("Confirm: the gateway shows deactivated", "deactivated", status)
    refused = until(lambda: retrieve(args.gateway, args.allowed) == "403 4103")
    expect(f"and it refuses every request, {args.allowed}'s too (403 4103)", True, refused)
    c.action("gateways", args.gateway_id, "Activate")
    c.answer_dialog(confirm=True)
    passed = until(lambda: retrieve(args.gateway, args.allowed) == "200 2000")
    expect(f"Activate the gateway: {args.allowed} passes again (200 2000)", True, passed)

    c.by_id("logout").click()
    c.wait(lambda: c.visible("login-view"))
    expect("Sign out: the sign-in form, the token forgotten, the tables emptied", [True, None, 0],
           [c.visible("login-view"),
            d.execute_script("return sessionStorage.getItem('m2mguard.operator-token')"),
            len(c.d.find_elements(By.CSS_SELECTOR, "#nodes tbody tr"))])


if __name__ == "__main__":
    sys.exit(main())
