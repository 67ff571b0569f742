#!/usr/bin/env python3
"""Loads a dtrain HTML report in headless Chromium and checks it.

usage: report_browser.py REPORT.html --runs N --screenshot OUT.png [--chromium PATH]

Drives Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe:
commands on fd 3, replies and events on fd 4, each a JSON text ended by NUL),
with the Python standard library only. Loads the report from a file:// URL
and checks, in the rendered DOM:
  - every chart the report must have (loss, its parts, validation, per-run
    alpha, phases and communication, examples/s) is an <svg> with a non-empty
    <title> that aria-labelledby names, is laid out (non-zero size), and
    draws at least one series path with two or more points (or says "no data");
  - every table (runs, phases, test evaluation, cold-start buckets of each run
    with a test evaluation, configuration diff) exists with data rows;
  - the page has no <script> and fetched nothing (no resource entries);
  - the console showed no errors: console.error/assert, uncaught exceptions,
    and Chromium's own log entries at level "error" (e.g. an SVG attribute
    it could not parse) all count;
then saves a full-page screenshot.

Exit status: 0 checks passed, 1 a check failed, 77 Chromium cannot run here.
"""
import argparse
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars"]


class Browser:
    def __init__(self, exe, profile):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        # the child's fd 3 reads our commands, its fd 4 writes replies (moved
        # out of the way first, in case the pipes themselves are fds 3 or 4)
        def setup():
            r, w = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)
        self.proc = subprocess.Popen([exe, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}",
                                      "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(profile, "chromium.log"), "wb"),
                                     preexec_fn=setup, pass_fds=(3, 4))
        os.close(to_child_r)
        os.close(from_child_w)
        self.buf = b""
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            m = self.read(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def read(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no answer from Chromium")
            r, _, _ = select.select([self.from_child], [], [], left)
            if r:
                chunk = os.read(self.from_child, 1 << 20)
                if not chunk:
                    raise EOFError("Chromium closed the pipe")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def wait_event(self, method, timeout=30):
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        deadline = time.time() + timeout
        while True:
            m = self.read(deadline)
            if m.get("method") == method:
                return m
            self.events.append(m)

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


DOM_CHECK = r"""
(() => {
  const runs = %d;
  const problems = [];
  const need = ["chart-loss", "chart-bpr", "chart-neg-entropy", "chart-balance", "chart-valid-ndcg10",
                "chart-valid-hr10", "chart-examples-per-sec"];
  for (let i = 0; i < runs; i++) need.push("chart-alpha-" + i, "chart-phases-" + i, "chart-comm-" + i);
  const charts = {};
  for (const id of need) {
    const svg = document.getElementById(id);
    if (!svg || svg.tagName.toLowerCase() !== "svg") { problems.push("no <svg> #" + id); continue; }
    const title = svg.querySelector(":scope > title");
    if (!title || !title.textContent.trim()) problems.push(id + ": no <title>");
    const labelled = (svg.getAttribute("aria-labelledby") || "").split(/\s+/);
    if (!title || !labelled.includes(title.id)) problems.push(id + ": aria-labelledby does not name its <title>");
    if (svg.getAttribute("role") !== "img") problems.push(id + ": role is not img");
    const box = svg.getBoundingClientRect();
    if (box.width < 100 || box.height < 100) problems.push(id + ": not laid out (" + box.width + "x" + box.height + ")");
    const paths = [...svg.querySelectorAll("path.series")];
    const drawn = paths.filter(p => ((p.getAttribute("d") || "").match(/[ML]/g) || []).length >= 2);
    const empty = svg.classList.contains("no-data");
    if (!empty && drawn.length === 0) problems.push(id + ": no series with two or more points");
    if (svg.querySelectorAll(".ticks text").length < 4) problems.push(id + ": no tick labels");
    if (svg.querySelectorAll(".legend text").length !== paths.length && !empty)
      problems.push(id + ": legend entries do not match the series");
    charts[id] = {series: paths.length, drawn: drawn.length, empty: empty};
  }
  const tables = {};
  const needTables = ["table-runs", "table-phases", "table-test", "table-config-diff"];
  for (let i = 0; i < runs; i++)
    if (document.querySelector("#table-runs tr:nth-child(" + (i + 2) + ")")?.textContent.includes("finished"))
      needTables.push("table-buckets-" + i);
  for (const id of needTables) {
    const t = document.getElementById(id);
    if (!t || t.tagName.toLowerCase() !== "table") { problems.push("no <table> #" + id); continue; }
    const rows = t.querySelectorAll("tr").length - 1;
    if (rows < 1) problems.push(id + ": no data rows");
    tables[id] = rows;
  }
  if (document.querySelectorAll("#table-runs tr").length - 1 !== runs) problems.push("table-runs: not one row per run");
  if (document.querySelectorAll("script").length) problems.push("the page has <script> elements");
  const fetched = performance.getEntriesByType("resource").map(e => e.name);
  if (fetched.length) problems.push("the page fetched " + fetched.join(", "));
  if (!document.title.startsWith("dtrain report")) problems.push("title: " + document.title);
  return {problems, charts, tables, height: document.documentElement.scrollHeight};
})()
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--chromium", default=None)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--max-height", type=int, default=0, help="clip the screenshot (0 = the whole page)")
    a = ap.parse_args()
    exe = a.chromium or shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not exe:
        print("SKIP: chromium is not installed (apt-get install chromium)")
        return 77
    profile = tempfile.mkdtemp(prefix="dtrain-chromium-")
    b = None
    try:
        try:
            b = Browser(exe, profile)
            b.send("Browser.getVersion", timeout=60)
        except (OSError, EOFError, TimeoutError, RuntimeError) as e:
            log = open(os.path.join(profile, "chromium.log"), errors="replace").read()[-2000:]
            print(f"SKIP: chromium cannot run here ({e}); its log ends:\n{log}")
            return 77
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            b.send(domain + ".enable", session=sid)
        b.send("Emulation.setDeviceMetricsOverride",
               {"width": a.width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=sid)
        url = "file://" + os.path.abspath(a.report)
        nav = b.send("Page.navigate", {"url": url}, session=sid)
        if nav.get("errorText"):
            print(f"FAIL: loading {url}: {nav['errorText']}")
            return 1
        b.wait_event("Page.loadEventFired", timeout=60)
        res = b.send("Runtime.evaluate", {"expression": DOM_CHECK % a.runs, "returnByValue": True}, session=sid)
        if "exceptionDetails" in res:
            print("FAIL: the DOM check threw:", json.dumps(res["exceptionDetails"])[:1000])
            return 1
        dom = res["result"]["value"]
        height = dom["height"] if a.max_height <= 0 else min(dom["height"], a.max_height)
        shot = b.send("Page.captureScreenshot",
                      {"format": "png", "captureBeyondViewport": True,
                       "clip": {"x": 0, "y": 0, "width": a.width, "height": height, "scale": 1}},
                      session=sid, timeout=60)
        png = base64.b64decode(shot["data"])
        os.makedirs(os.path.dirname(os.path.abspath(a.screenshot)), exist_ok=True)
        with open(a.screenshot, "wb") as f:
            f.write(png)
        # events that arrived while we worked: console errors, exceptions, log errors
        b.send("Runtime.evaluate", {"expression": "0"}, session=sid)  # flush pending events
        errors = []
        for e in b.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append("console." + p["type"] + ": " + " ".join(str(x.get("value", x.get("description")))
                                                                         for x in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                errors.append("exception: " + p.get("exceptionDetails", {}).get("text", "?"))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                en = p["entry"]
                errors.append(f"log ({en.get('source')}): {en.get('text')} {en.get('url', '')}")
        problems = dom["problems"] + errors
        print(f"charts: {len(dom['charts'])} checked, tables: {json.dumps(dom['tables'])}, page height "
              f"{dom['height']} px, screenshot {a.screenshot} ({len(png)} bytes)")
        if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 10000:
            problems.append("the screenshot is not a plausible PNG")
        if problems:
            for p in problems:
                print("FAIL:", p)
            return 1
        print("ok: every chart and table present, no console errors")
        return 0
    finally:
        if b:
            b.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
