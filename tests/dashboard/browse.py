#!/usr/bin/env python3
"""Drives headless Chromium on the raftis dashboard over the DevTools protocol, for tests/dashboard.rs.

    browse.py URL SCREENSHOT.png

Loads URL, waits until the page shows a leader and a term, and prints `READY <leader> <term>`.
Then reads one line from stdin (the test killed the leader), and polls the page's DOM until it
shows another leader in a higher term: prints `CHANGED <leader> <term> <milliseconds>` (or
`TIMEOUT ...` after 20 s); then, after one more line from stdin, saves a screenshot, prints
`SHOT` and exits. Needs Debian's `chromium` and the
`websockets` Python package.
"""

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets


async def main(url, screenshot):
    profile = tempfile.mkdtemp(prefix="raftis-chromium-")
    browser = subprocess.Popen(
        [
            shutil.which("chromium") or "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1280,760",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Chromium writes the port it chose into the profile directory.
        port_file = os.path.join(profile, "DevToolsActivePort")
        for _ in range(300):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.1)
        port = open(port_file).read().split()[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(t for t in targets if t["type"] == "page")
        async with websockets.connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            ids = itertools.count(1)

            async def call(method, **params):
                i = next(ids)
                await ws.send(json.dumps({"id": i, "method": method, "params": params}))
                while True:
                    reply = json.loads(await ws.recv())
                    if reply.get("id") == i:
                        if "error" in reply:
                            raise RuntimeError(f"{method}: {reply['error']}")
                        return reply["result"]

            async def shown():
                result = await call(
                    "Runtime.evaluate",
                    expression="[document.getElementById('leader').textContent,"
                    " document.getElementById('term').textContent].join(' ')",
                    returnByValue=True,
                )
                # Until the page has loaded, the elements do not exist and the expression throws
                # (no value): the caller asks again.
                value = result.get("result", {}).get("value")
                if not isinstance(value, str) or " " not in value:
                    return "", ""
                leader, term = value.split(" ", 1)
                return leader, term

            await call("Page.enable")
            await call("Page.navigate", url=url)
            deadline = time.monotonic() + 20
            while True:
                leader, term = await shown()
                if leader.isdigit() and term.isdigit():
                    break
                if time.monotonic() > deadline:
                    print(f"TIMEOUT page shows leader={leader} term={term}", flush=True)
                    return 1
                await asyncio.sleep(0.05)
            print(f"READY {leader} {term}", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            started = time.monotonic()
            while True:
                now_leader, now_term = await shown()
                if now_leader.isdigit() and now_leader != leader and int(now_term) > int(term):
                    break
                if time.monotonic() - started > 20:
                    print(f"TIMEOUT page shows leader={now_leader} term={now_term}", flush=True)
                    return 1
                await asyncio.sleep(0.05)
            took = int((time.monotonic() - started) * 1000)
            print(f"CHANGED {now_leader} {now_term} {took}", flush=True)
            # The picture is taken when the test says (after it restarted the killed node).
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            shot = await call("Page.captureScreenshot", format="png")
            with open(screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            print("SHOT", flush=True)
            return 0
    finally:
        browser.kill()
        browser.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
