"""Every staff page on a 375 px phone: nothing scrolls sideways, nothing sticks out.

The pages are the app's own GET routes (as the route walk in tests/security enumerates them),
with seeded data so that tables have rows: a project on chain, a funded disbursement, a person
in a group with a card, a vendor with a pending payment, a job, an import. The portal is served
over HTTP from this process, and Chromium opens each page signed in as the seeded admin.
Tables below 600 px are stacked cards with each cell labelled by its column
(static/js/table-cards.js); the labels are checked on a few pages, and screenshots of several
pages at 375 and 1366 px go to ARTIFACTS_DIR.
"""

from __future__ import annotations

import re
import threading

import pytest
from werkzeug.serving import make_server

from tests.security import fuzzing
from tests.security.test_fuzz_routes import _client_for, _clients, _get_rules, _url

pytestmark = pytest.mark.browser

app = fuzzing.app
world = fuzzing.world
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1366, "height": 900}
SHOTS = ["main.home", "beneficiaries.index", "jobs.index", "accounts.account", "chain.project"]
SHOTS += ["disbursements.show", "vendors.index", "audit.index", "projects.index"]

# Whatever reaches past the screen's right edge, also inside a box that scrolls sideways (a
# table's status or actions off-screen), unless a box that fits the screen clips it on purpose.
STICKING_OUT = """() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) continue;
    if (box.right <= width + 0.5 && box.left >= -0.5) continue;
    if (box.right <= 0) continue;  // parked off-screen on purpose (a skip link until focused)
    if (getComputedStyle(el).visibility === "hidden") continue;
    // Cut off on purpose by a box that clips (overflow: hidden or clip) and fits: not lost.
    // A box that scrolls sideways does not excuse it: what is in it is off-screen all the same.
    let up = el.parentElement, held = false;
    while (up && up !== document.body) {
      const overflow = getComputedStyle(up).overflowX;
      if (overflow === "hidden" || overflow === "clip") {
        const outer = up.getBoundingClientRect();
        if (outer.right <= width + 0.5 && outer.left >= -0.5) { held = true; break; }
      }
      up = up.parentElement;
    }
    if (held) continue;
    const classes = typeof el.className === "string" ? el.className.trim() : "";
    const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
      (classes ? "." + classes.split(/\\s+/).join(".") : "");
    const text = (el.textContent || "").trim().slice(0, 40);
    found.push(`${name} ${Math.round(box.left)}..${Math.round(box.right)}: ${text}`);
  }
  return found;
}"""


@pytest.fixture
def served(app):
    """The test's app over HTTP on a free port, in a thread of this process."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def staff_pages(app, client, world) -> dict[str, str]:
    """Endpoint -> path of every staff GET page that answers 200 with HTML for the admin."""
    clients = _clients(app, client, world)
    pages = {}
    for rule in _get_rules(app):
        if _client_for(app, rule, clients) is not client or rule.endpoint == "static":
            continue
        path = _url(rule, world.ids)
        response = client.get(path)
        if response.status_code == 200 and response.mimetype == "text/html":
            pages[rule.endpoint] = path
    return pages


def signed_in_context(chromium, client, app, base: str, viewport: dict):
    context = chromium.new_context(viewport=viewport, is_mobile=viewport["width"] < 600)
    name = app.config["SESSION_COOKIE_NAME"]
    context.add_cookies([{"name": name, "value": client.get_cookie(name).value, "url": base}])
    # Layout only: no live socket (the page walk leaves pages faster than this simple threaded
    # server settles a socket's join, and the pages stay whole without it).
    context.route(re.compile(r"/socket\.io/"), lambda route: route.abort())
    return context


# A phone browser's own description of itself, as the sessions list shows it: long, no spaces
# to break at in places.
LONG_AGENT = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36 SamsungBrowser/26.0,gzip(gfe),gzip(gfe)"
)


def another_session(app, user) -> None:
    """The admin also signed in from a phone: the sessions table holds its long description."""
    from portal.accounts import sessions
    from portal.extensions import db

    with app.test_request_context(headers={"User-Agent": LONG_AGENT}):
        sessions.start(user)
        db.session.commit()


def test_no_staff_page_scrolls_sideways_on_a_phone(chromium, app, client, world, served, shots):
    another_session(app, world.admin)
    pages = staff_pages(app, client, world)
    assert len(pages) >= 40, sorted(pages)
    assert {"accounts.account", "beneficiaries.index", "jobs.index"} <= set(pages)
    phone = signed_in_context(chromium, client, app, served, PHONE)
    page = phone.new_page()
    failures: list[str] = []
    for endpoint, path in sorted(pages.items()):
        response = page.goto(served + path, wait_until="load")
        assert response is not None and response.ok, f"{path}: {response and response.status}"
        assert "/login" not in page.url, f"{path} sent the browser to sign in"
        page.wait_for_timeout(100)  # let the scripts label and live updates settle
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if scroll > PHONE["width"]:
            failures.append(f"{path} ({endpoint}) is {scroll}px wide")
        for found in page.evaluate(STICKING_OUT)[:5]:
            failures.append(f"{path} ({endpoint}): {found}")
        if endpoint in SHOTS:
            name = endpoint.replace(".", "-")
            page.screenshot(path=str(shots / f"phone-375-{name}.png"), full_page=True)
    phone.close()
    assert not failures, "\n".join(failures)


def test_table_rows_are_labelled_cards_on_a_phone_and_tables_on_a_desktop(
    chromium, app, client, world, served, shots
):
    pages = staff_pages(app, client, world)
    phone = signed_in_context(chromium, client, app, served, PHONE)
    page = phone.new_page()
    page.goto(served + pages["jobs.index"])
    cell = page.locator("#jobs-table tbody tr:not(.empty-row) td[data-label='Status']").first
    assert cell.count() == 1, "the job's status cell is not labelled"
    label = cell.evaluate("td => getComputedStyle(td, '::before').content")
    assert label == '"Status"', label
    box = cell.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert page.locator("#jobs-table thead").bounding_box()["height"] <= 1  # read, not shown
    phone.close()

    desktop = signed_in_context(chromium, client, app, served, DESKTOP)
    page = desktop.new_page()
    for endpoint in SHOTS:
        if endpoint not in pages:
            continue
        page.goto(served + pages[endpoint])
        page.screenshot(
            path=str(shots / f"desktop-1366-{endpoint.replace('.', '-')}.png"), full_page=True
        )
    page.goto(served + pages["jobs.index"])
    header = page.locator("#jobs-table thead")
    assert header.bounding_box()["height"] > 10, "a desktop keeps the table's header row"
    assert page.evaluate("getComputedStyle(document.querySelector('#jobs-table tr')).display") == (
        "table-row"
    )
    desktop.close()
