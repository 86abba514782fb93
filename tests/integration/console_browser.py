"""The console's page in headless Chromium, driven by Selenium through
chromedriver (Debian's chromium, chromium-driver, python3-selenium), during a
real rollout that test_console_browser.sh started.

    console_browser.py URL TOKEN SCREENSHOT READY_FILE DB

It opens the page (and touches READY_FILE once it follows the event
stream: the shell then creates the rollout), watches the rollout's stacked bar move as the first
wave's nodes download and finish (without the page reloading), pauses the
rollout with its button (the token asked for once, in the dialog) and sees
it stop, and saves a screenshot. Then, in the same browser, the fleet grows to
10,000 nodes (FLEET_FILL synthetic rows written straight into the inventory DB,
in one transaction beside serve's): the page's summary follows, a fresh load
of the page holds one page of rows in its DOM, and paging and a state filter
work. Each step prints PASS or FAIL; the exit status is the number of
failures."""
import json
import shutil
import sqlite3
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

URL, TOKEN, SHOT, READY, DB = sys.argv[1:6]
FLEET = 10000
failures = 0


def check(ok, what):
    global failures
    print(("PASS: " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        failures += 1


def api(path):
    with urllib.request.urlopen(URL + "api/v1" + path, timeout=10) as r:
        return json.load(r)


def until(secs, fn):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception:  # an element redrawn between find and read
            pass
        time.sleep(0.2)
    return None


# Runs in the page: a reload would drop it, so its being there at the end
# also says the page never reloaded.
SAMPLER = """
window.ferrySamples = {bars: [], pcts: {}};
setInterval(() => {
  const box = document.querySelector('#rollouts .rollout[data-id="1"]');
  if (box) {
    const b = [...box.querySelectorAll('.totals .seg')]
      .map((s) => s.className.replace('seg ', '') + ' ' + s.dataset.count).join(', ');
    const bars = window.ferrySamples.bars;
    if (bars[bars.length - 1] !== b) bars.push(b);
  }
  for (const row of document.querySelectorAll('#nodes tbody tr[data-node]')) {
    const p = row.querySelector('.progress[data-pct]');
    if (!p) continue;
    const seen = window.ferrySamples.pcts[row.dataset.node] ||= [];
    if (!seen.includes(+p.dataset.pct)) seen.push(+p.dataset.pct);
  }
}, 50);
"""


def fill_fleet(n):
    """n synthetic nodes (zz-00000..), every tenth failed, the rest idle on
    1.0.0, in one transaction: serve's node counts follow by its triggers."""
    now = int(time.time()) - 3600  # not "changed" for the event stream
    rows = [("zz-%05d" % i, "gw-synthetic", "", "1.0.0", "failed" if i % 10 == 0 else "idle",
             0, 0, "", "", 1, now, now) for i in range(n)]
    with sqlite3.connect(DB, timeout=20) as db:
        db.executemany("INSERT INTO nodes (node, gateway, release, version, state, bytes, total,"
                       " error, message, seq, ts, updated_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.close()


# Read in the page in one go: the list may be drawn again between a find and
# a read of its elements (the page reads it again when nodes change).
def dom_rows(d):
    return d.execute_script("return document.querySelectorAll('#nodes tbody tr').length")


def page_nodes(d):
    return d.execute_script("return [...document.querySelectorAll('#nodes tbody tr[data-node]')]"
                            ".map((r) => r.dataset.node)")


def page_states(d):
    return set(d.execute_script("return [...document.querySelectorAll('#nodes tbody "
                                "tr[data-node]')].map((r) => r.dataset.state)"))


def rollout_box(d):
    return d.find_element(By.CSS_SELECTOR, '#rollouts .rollout[data-id="1"]')


profile = tempfile.mkdtemp(prefix="ferry-chromium-")
opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
          "--disable-component-update", "--no-first-run", "--disable-sync",
          "--disable-dev-shm-usage", "--window-size=1280,1500", "--user-data-dir=" + profile):
    opts.add_argument(a)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
driver.set_page_load_timeout(30)
try:
    driver.get(URL)
    # A mark that only lives as long as this page: a reload would drop it.
    driver.execute_script(SAMPLER)
    check(until(20, lambda: driver.find_element(By.ID, "live").text.strip() == "live"),
          "the page follows the event stream (badge: %s)" % driver.find_element(By.ID, "live").text)
    check(until(10, lambda: len(driver.find_elements(By.CSS_SELECTOR, "#nodes tbody tr")) >= 6),
          "the node list shows the fleet")
    open(READY, "w").close()
    check(until(20, lambda: rollout_box(driver)) is not None,
          "the rollout appears on the page once created")

    # The bar moves: every distinct drawing of it is recorded, by the page
    # itself (a sample every 50 ms), until the first wave's two nodes are
    # success; so are the percentages each node's download bar shows.
    until(60, lambda: rollout_box(driver).find_element(By.CSS_SELECTOR, ".totals")
          .get_attribute("data-success") == "2")
    time.sleep(0.3)  # the sampler's next look
    samples = driver.execute_script("return window.ferrySamples")
    seen, pcts = samples["bars"], samples["pcts"]
    success = rollout_box(driver).find_element(By.CSS_SELECTOR, ".totals").get_attribute(
        "data-success")
    check(success == "2", "the first wave's two nodes finish on the page (success %s)" % success)
    text = rollout_box(driver).text
    check("undefined" not in text and "NaN" not in text,
          "every count in the rollout's box is a number")
    # By state: the canaries busy (after silent targets, when the page saw
    # the rollout before its first record), then success.
    busy = [i for i, b in enumerate(seen) if "s-active" in b]
    check(busy and seen[-1].startswith("s-success 2") and busy[0] < len(seen) - 1,
          "the rollout's bar moved from the canaries busy to done: %s" % seen)
    moving = {n for n, v in pcts.items() if len(v) >= 3}
    check(moving == {"c1", "c2"}, "each canary's download bar moved in the node list: %s" % pcts)
    done = until(10, lambda: [r.get_attribute("data-node") for r in driver.find_elements(
        By.CSS_SELECTOR, '#nodes tbody tr[data-state="success"]')])
    check(sorted(done or []) == ["c1", "c2"], "the node list shows c1 and c2 success (%s)" % done)
    check(driver.execute_script("return window.ferrySamples !== undefined"),
          "all of it arrived without reloading the page")

    # Pause with the button: the dialog asks for the token once.
    pause = rollout_box(driver).find_element(By.CSS_SELECTOR, 'button[data-action="pause"]')
    check(pause.is_enabled(), "the pause button is enabled while it runs")
    pause.click()
    dialog = driver.find_element(By.ID, "action-dialog")
    check(until(5, dialog.is_displayed), "pause opens the confirmation dialog")
    token_row = driver.find_element(By.ID, "action-token-row")
    check(token_row.is_displayed(), "which asks for the token")
    dialog.find_element(By.NAME, "token").send_keys(TOKEN)
    dialog.find_element(By.NAME, "reason").send_keys("checking the canaries")
    driver.find_element(By.ID, "action-confirm").click()
    check(until(15, lambda: rollout_box(driver).get_attribute("data-state") == "paused")
          is not None, "the page shows the rollout paused")
    r = api("/rollouts/1")
    last = r["log"][-1]
    check(r["state"] == "paused" and last["action"] == "paused" and last["actor"] == "http:ops",
          "the decision log says who paused it: %s" % last)
    # It stays stopped: the second wave does not open, its nodes stay put.
    time.sleep(4)
    r = api("/rollouts/1")
    w2 = r["waves"][1]
    check(r["state"] == "paused" and r["open_waves"] == 1 and not w2["open"]
          and w2["states"].get("success", 0) == 0,
          "while paused the second wave stays closed (%s)" % w2)
    resume = rollout_box(driver).find_element(By.CSS_SELECTOR, 'button[data-action="resume"]')
    check(resume.is_enabled() and not rollout_box(driver).find_element(
        By.CSS_SELECTOR, 'button[data-action="pause"]').is_enabled(),
        "resume is offered now, pause is not")
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(SHOT)
    check(len(open(SHOT, "rb").read()) > 10000, "the screenshot is saved")

    # ---- 10,000 nodes -------------------------------------------------------------------
    t0 = time.monotonic()
    have = api("/summary")["nodes"]
    fill_fleet(FLEET - have)
    check(until(15, lambda: driver.find_element(By.ID, "sum-nodes").text == str(FLEET)),
          "the open page's summary follows the fleet to %d nodes (shows %s)"
          % (FLEET, driver.find_element(By.ID, "sum-nodes").text))
    t1 = time.monotonic()
    driver.get(URL)
    shown = until(15, lambda: driver.find_element(By.ID, "sum-nodes").text == str(FLEET)
                  and len(page_nodes(driver)) == 100 and page_nodes(driver))
    check(shown, "a fresh load with %d nodes shows the summary and the first page in %.1f s"
          % (FLEET, time.monotonic() - t1))
    check(dom_rows(driver) == 100, "the node table holds one page of rows in the DOM, not the "
          "fleet (%d rows)" % dom_rows(driver))
    first = page_nodes(driver)
    driver.find_element(By.ID, "page-next").click()
    second = until(10, lambda: (lambda p: p if p and p != first else None)(page_nodes(driver)))
    check(second and len(second) == 100 and second[0] > first[-1] and dom_rows(driver) == 100,
          "next shows the following 100 nodes (%s .. %s), still one page in the DOM"
          % (second and second[0], second and second[-1]))
    driver.find_element(By.ID, "page-prev").click()
    check(until(10, lambda: page_nodes(driver) == first), "previous goes back to the first page")
    failed = api("/nodes?state=failed&limit=1")["total"]
    driver.find_element(By.CSS_SELECTOR, "#filters select[name=state] option[value=failed]").click()
    driver.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    want = "%d nodes" % failed
    check(until(10, lambda: driver.find_element(By.ID, "nodes-count").text == want
                and page_states(driver) == {"failed"} and dom_rows(driver) == 100),
          "the state filter shows failed nodes only, one page of them, %s (%s)"
          % (want, page_states(driver)))
    print("the 10,000-node part took %.1f s" % (time.monotonic() - t0), flush=True)
    logs = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    check(not logs, "no error in the browser's console: %s" % logs)
finally:
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
sys.exit(failures)
