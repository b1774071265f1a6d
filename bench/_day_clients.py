"""The distribution day's people: vendors charging, staff browsing, dashboards watching.

All asyncio (aiohttp and python-socketio's AsyncClient, websocket transport as browsers
upgrade to): hundreds of clients cost one thread. Every network wait has a timeout, so a stack
that stops answering gives errors and an end, never a hang.

Times: ``time.monotonic()`` for durations measured in one process; ``time.time()`` where a time
is compared with the portal's own stamps (the ``ts`` its live events carry) or across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import socketio
from _day_record import Errors, Timings
from _sms_capture import SmsCapture

from tests.support.stack import scrape_csrf

REDIRECTS = (301, 302, 303)
PAYMENT = re.compile(r"/vendor/payments/(\d+)/code")


def event_names() -> tuple[str, str, str]:
    """(the vendor's redemption event, the dashboard topic, the dashboard event's prefix).

    Read from the portal when it names them, so a renamed constant is followed; the defaults are
    today's names. Dashboard updates are recognised by prefix ("dashboard..."), so a snapshot
    event split into several still counts by arrival.
    """
    redemption, topic, prefix = "redemption.updated", "dashboard", "dashboard"
    # The benchmark still runs against a portal that moved these modules.
    with contextlib.suppress(Exception):
        from portal.redemptions import live as redemption_live

        redemption = getattr(redemption_live, "REDEMPTION_UPDATED", redemption)
    with contextlib.suppress(Exception):
        from portal.dashboard import live as dashboard_live

        topic = getattr(dashboard_live, "TOPIC", topic)
    return redemption, topic, prefix


def cookie_header(jar, base: str) -> str:
    from yarl import URL

    return "; ".join(f"{k}={m.value}" for k, m in jar.filter_cookies(URL(base)).items())


class HttpError(Exception):
    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind


async def fetch(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    timeout: float,
    expect: tuple[int, ...],
    data: dict | None = None,
) -> tuple[int, str, str | None]:
    """One request, no redirects followed; HttpError (kind = how it failed) unless ``expect``."""
    try:
        async with http.request(
            method,
            url,
            data=data,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as reply:
            text = await reply.text(errors="replace")
            status, location = reply.status, reply.headers.get("Location")
    except TimeoutError:
        raise HttpError("http_timeout", f"{method} {url}: no answer in {timeout:.0f} s") from None
    except aiohttp.ClientError as exc:
        raise HttpError("http_connection", f"{method} {url}: {exc!r}") from None
    if status not in expect:
        kind = "http_5xx" if status >= 500 else f"http_{status}"
        raise HttpError(kind, f"{method} {url} gave {status}: {_visible(text)}")
    return status, text, location


async def close_client(sio: socketio.AsyncClient | None) -> None:
    """Disconnect if connected, and close the client's HTTP session in any case (a connect
    that failed or was cancelled leaves it open)."""
    if sio is None:
        return
    with contextlib.suppress(Exception):  # the run is ending; the server drops what is left
        if sio.connected:
            await asyncio.wait_for(sio.disconnect(), 5)
    http = getattr(sio.eio, "http", None)
    if http is not None and not http.closed:
        with contextlib.suppress(Exception):
            await http.close()


def path_of(location: str) -> str:
    """The path (and query) of a redirect's Location, absolute or not."""
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _visible(page: str) -> str:
    """The words of an HTML page (for error messages), without tags."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page or ""))[:240]


# --------------------------------------------------------------------------- vendors


@dataclass
class VendorFigures:
    code_to_confirmed: list[float] = field(default_factory=list)
    charge_to_confirmed: list[float] = field(default_factory=list)
    sms: list[float] = field(default_factory=list)  # charge accepted -> code on the phone
    confirmed_stamps: list[float] = field(default_factory=list)  # the events' ``ts``
    confirmed_at: list[float] = field(default_factory=list)  # monotonic, for the rate
    started: int = 0
    timed_out: list[int] = field(default_factory=list)  # no final state within the timeout
    late: int = 0  # of those, confirmed after it (slow, not lost) before the run ended
    late_ids: list[int] = field(default_factory=list)
    unsettled: list[int] = field(default_factory=list)  # ended in another final state
    pages: Timings = field(default_factory=Timings)
    errors: Errors = field(default_factory=Errors)


class Vendor:
    """One shop's phone: signs in by SMS code, keeps a socket open, charges one person after
    another (waiting for each "confirmed" before the next, as the receipt page does)."""

    def __init__(self, index, base, phone, payers, project_id, sms, figures, *, timeouts):
        self.index, self.base, self.phone = index, base, phone
        self.payers, self.project_id = payers, project_id
        self.sms: SmsCapture = sms
        self.figures: VendorFigures = figures
        self.timeouts = timeouts
        self.http: aiohttp.ClientSession | None = None
        self.sio: socketio.AsyncClient | None = None
        self.token: str | None = None
        self.finals: dict[int, tuple[float, dict]] = {}
        self.timed_out: list[int] = []
        self.arrived = asyncio.Event()
        self.closing = False

    async def _get_page(self, name: str, path: str) -> str:
        started = time.monotonic()
        _, text, _ = await fetch(
            self.http, "GET", self.base + path, timeout=self.timeouts["http"], expect=(200,)
        )
        self.figures.pages.add(name, time.monotonic() - started)
        return text

    async def _post(self, path: str, data: dict) -> str:
        _, text, location = await fetch(
            self.http,
            "POST",
            self.base + path,
            data={**data, "csrf_token": self.token or ""},
            timeout=self.timeouts["http"],
            expect=(*REDIRECTS, 200),
        )
        if location is None:  # the form came back: it said why
            raise HttpError("form_refused", f"POST {path}: {_visible(text)}")
        return location

    async def _code_for(self, phone: str, after: int) -> str:
        deadline = time.monotonic() + self.timeouts["sms"]
        while time.monotonic() < deadline:
            code = self.sms.latest_code(phone, after)
            if code:
                return code
            await asyncio.sleep(0.02)
        raise HttpError("sms_timeout", f"no code reached {phone[-4:]} in {self.timeouts['sms']} s")

    async def sign_in(self) -> None:
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.token = scrape_csrf(await self._get_page("vendor sign-in", "/vendor/sign-in"))
        mark = self.sms.mark()
        await self._post("/vendor/sign-in", {"phone": self.phone})
        self.token = scrape_csrf(await self._get_page("vendor code", "/vendor/sign-in/code"))
        code = await self._code_for(self.phone, mark)
        await self._post("/vendor/sign-in/code", {"code": code})
        self.token = scrape_csrf(await self._get_page("vendor charge", "/vendor/charge"))

    async def connect(self, redemption_event: str) -> None:
        """Open the phone's socket; a phone whose socket failed tries again before its next
        charge, as a page reload would."""
        await close_client(self.sio)
        self.sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
        self.sio.on(redemption_event, self._on_redemption)
        self.sio.on("disconnect", self._on_disconnect)
        wait = self.timeouts["socket"]
        try:
            await asyncio.wait_for(
                self.sio.connect(
                    self.base,
                    headers={"Cookie": cookie_header(self.http.cookie_jar, self.base)},
                    transports=["websocket"],
                    wait_timeout=wait,
                ),
                wait + 5,
            )
            ack = await self.sio.call("subscribe", {"topic": "redemptions"}, timeout=wait)
        except Exception as exc:
            raise HttpError("vendor_socket_failed", f"vendor {self.index}: {exc!r}") from None
        if not (isinstance(ack, dict) and ack.get("ok")):
            raise HttpError("vendor_socket_refused", f"vendor {self.index}: {ack!r}")

    def _on_redemption(self, data):
        if isinstance(data, dict) and data.get("final") and isinstance(data.get("id"), int):
            self.finals[data["id"]] = (time.monotonic(), data)
            self.arrived.set()

    def _on_disconnect(self, *args):
        if not self.closing:
            self.figures.errors.add("vendor_socket_dropped", f"vendor {self.index}: {args!r}")

    async def _final(self, redemption_id: int, deadline: float) -> tuple[float, dict] | None:
        while redemption_id not in self.finals:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.arrived.clear()
            if redemption_id in self.finals:
                break
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except TimeoutError:
                return None
        return self.finals.pop(redemption_id)

    async def charge_once(self, payer: str) -> None:
        f = self.figures
        started = time.monotonic()
        self.token = scrape_csrf(await self._get_page("vendor charge", "/vendor/charge")) or (
            self.token
        )
        mark = self.sms.mark()
        where = await self._post(
            "/vendor/charge",
            {"project_id": str(self.project_id), "phone": payer, "amount": "1", "card": ""},
        )
        found = PAYMENT.search(where)
        if not found:
            raise HttpError("charge_unexpected_redirect", f"charge went to {where}")
        redemption_id = int(found.group(1))
        f.started += 1
        accepted = time.monotonic()
        await self._get_page("vendor code page", found.group(0))
        code = await self._code_for(payer, mark)
        f.sms.append(time.monotonic() - accepted)
        entered = time.monotonic()
        receipt = await self._post(found.group(0), {"code": code})
        try:  # the phone follows the redirect to the receipt, which waits for "confirmed"
            await self._get_page("vendor receipt", path_of(receipt))
        except HttpError as exc:
            f.errors.add(exc.kind, str(exc))
        final = await self._final(redemption_id, entered + self.timeouts["confirm"])
        if final is None:
            self.timed_out.append(redemption_id)
            f.errors.add(
                "redemption_not_confirmed",
                f"redemption {redemption_id}: no final state in {self.timeouts['confirm']} s",
            )
            return
        arrived, data = final
        if data.get("status") != "settled":
            f.unsettled.append(redemption_id)
            f.errors.add("redemption_not_confirmed", f"redemption {redemption_id}: {data!r}")
            return
        f.code_to_confirmed.append(arrived - entered)
        f.charge_to_confirmed.append(arrived - started)
        f.confirmed_at.append(arrived)
        if isinstance(data.get("ts"), int | float):
            f.confirmed_stamps.append(float(data["ts"]))

    async def charge_until(self, end: float, redemption_event: str) -> None:
        n = 0
        while time.monotonic() < end:
            payer = self.payers[n % len(self.payers)]
            n += 1
            try:
                if self.sio is None or not self.sio.connected:
                    await self.connect(redemption_event)
                await self.charge_once(payer)
            except HttpError as exc:
                self.figures.errors.add(exc.kind, str(exc))
                await asyncio.sleep(0.5)  # a failing stack is not hammered in a tight loop
            except Exception as exc:  # keep the vendor going; say what it was
                self.figures.errors.add("vendor_exception", repr(exc))
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        self.closing = True
        for redemption_id in self.timed_out:
            self.figures.timed_out.append(redemption_id)
            found = self.finals.get(redemption_id)
            if found and found[1].get("status") == "settled":
                self.figures.late += 1
                self.figures.late_ids.append(redemption_id)
        await close_client(self.sio)
        if self.http is not None:
            await self.http.close()


# --------------------------------------------------------------------------- staff browsing


async def browse(
    base: str,
    cookie: str,
    pages: list[tuple[str, str]],
    end: float,
    timings: Timings,
    errors: Errors,
    *,
    think: float,
    timeout: float,
    seed: int,
) -> None:
    """One staff member clicking through ordinary pages until ``end``."""
    rng = random.Random(seed)
    async with aiohttp.ClientSession(
        headers={"Cookie": cookie}, cookie_jar=aiohttp.DummyCookieJar()
    ) as http:
        while time.monotonic() < end:
            name, path = rng.choice(pages)
            started = time.monotonic()
            try:
                await fetch(http, "GET", base + path, timeout=timeout, expect=(200,))
                timings.add(name, time.monotonic() - started)
            except HttpError as exc:
                errors.add(exc.kind, str(exc))
            await asyncio.sleep(think * rng.uniform(0.5, 1.5))


# --------------------------------------------------------------------------- dashboards
# Run in a process of their own (``--dashboards FILE``): hundreds of sockets decoding every
# broadcast would otherwise take the CPU the vendors' timings need.


class Screen:
    def __init__(self, prefix: str):
        self.prefix = prefix
        self.updates: list[tuple[float, float]] = []
        self.other: dict[str, int] = {}
        self.connected = False
        self.closing = False
        self.dropped = False
        self.connect_s: float | None = None

    def on_any(self, event, data=None):
        now = time.time()
        if event.startswith(self.prefix):
            ts = data.get("ts") if isinstance(data, dict) else None
            self.updates.append((float(ts) if isinstance(ts, int | float) else now, now))
        else:
            self.other[event] = self.other.get(event, 0) + 1

    def on_disconnect(self, *args):
        if not self.closing:
            self.dropped = True


async def _open_screen(cfg: dict, cookie: str, screen: Screen, sio, errors: Errors) -> None:
    sio.on("*", screen.on_any)
    sio.on("disconnect", screen.on_disconnect)
    wait = cfg["socket_timeout"]
    started = time.monotonic()
    try:
        await asyncio.wait_for(
            sio.connect(
                cfg["base"],
                headers={"Cookie": cookie},
                transports=["websocket"],
                wait_timeout=wait,
            ),
            wait + 5,
        )
        ack = await sio.call(
            "subscribe", {"topic": cfg["topic"], "project_id": cfg["project_id"]}, timeout=wait
        )
        if not (isinstance(ack, dict) and ack.get("ok")):
            errors.add("dashboard_socket_refused", repr(ack)[:200])
        else:
            screen.connected = True
            screen.connect_s = time.monotonic() - started
    except Exception as exc:
        errors.add("dashboard_socket_failed", repr(exc))


async def _watch(cfg: dict) -> dict:
    folder = Path(cfg["folder"])
    errors = Errors()
    screens = [Screen(cfg["prefix"]) for _ in range(cfg["count"])]
    clients: list[socketio.AsyncClient] = []
    gate = asyncio.Semaphore(cfg["connect_concurrency"])

    async def one(k: int):
        async with gate:
            cookie = cfg["cookies"][k % len(cfg["cookies"])]
            sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
            clients.append(sio)
            await _open_screen(cfg, cookie, screens[k], sio, errors)

    # Open when told (the vendors sign in first), and for a bounded time: against a server that
    # stopped answering, sockets still waiting at the end of the window count as not opened.
    told = time.monotonic() + cfg["max_seconds"]
    while not (folder / "open").exists() and time.monotonic() < told:
        await asyncio.sleep(0.1)
    opening = time.monotonic()
    tasks = [asyncio.ensure_future(one(k)) for k in range(cfg["count"])]
    _, late = await asyncio.wait(tasks, timeout=cfg["open_seconds"])
    for task in late:
        task.cancel()
    if late:
        await asyncio.gather(*late, return_exceptions=True)
        errors.add(
            "dashboard_socket_not_open_in_time",
            f"{len(late)} sockets not open within {cfg['open_seconds']:.0f} s",
        )
        errors.counts["dashboard_socket_not_open_in_time"] += len(late) - 1
    connected = sum(s.connected for s in screens)
    (folder / f"ready-{cfg['name']}.json").write_text(
        json.dumps({"connected": connected, "seconds": time.monotonic() - opening})
    )
    deadline = time.monotonic() + cfg["max_seconds"]
    while not (folder / "stop").exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    for s in screens:
        s.closing = True
    dropped = sum(s.dropped for s in screens)
    if dropped:
        errors.add("dashboard_socket_dropped", f"{dropped} sockets closed by the server")
        errors.counts["dashboard_socket_dropped"] += dropped - 1
    await asyncio.gather(*(close_client(c) for c in clients))
    other: dict[str, int] = {}
    for s in screens:
        for k, v in s.other.items():
            other[k] = other.get(k, 0) + v
    return {
        "count": cfg["count"],
        "connected": connected,
        "connect_s": [s.connect_s for s in screens if s.connect_s is not None],
        "screens": [s.updates for s in screens if s.connected],
        "other_events": other,
        "errors": {"counts": dict(errors.counts), "examples": errors.examples},
    }


def watch_dashboards(config_file: str) -> None:
    """``--dashboard-client FILE``: open the sockets FILE describes, hold them until told to stop,
    write what they received next to it."""
    cfg = json.loads(Path(config_file).read_text())
    result = asyncio.run(_watch(cfg))
    out = Path(cfg["folder"]) / f"result-{cfg['name']}.json"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.rename(out)
