"""A browser's user-agent string as people say it: "Chrome on Android", "Firefox on Windows".

The parsing is ua-parser's (the regexes of the uap-core project, kept up to date in the
ua-parser-builtins package); this module only turns its families into the names people use.
"""

from __future__ import annotations

from functools import lru_cache

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from ua_parser import parse_os, parse_user_agent

# ua-parser's families, as people name them (a phone's Chrome is still Chrome).
BROWSERS = {
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": _l("an Android app"),
    "HeadlessChrome": _l("Chrome (automated)"),
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": _l("an iPhone app"),
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
    "Opera Mini": "Opera Mini",
    "Samsung Internet": "Samsung Internet",
    "UC Browser": "UC Browser",
}
SYSTEMS = {
    "Mac OS X": "macOS",
    "Chrome OS": "ChromeOS",
    "Ubuntu": "Linux",
    "Fedora": "Linux",
    "Debian": "Linux",
}
UNKNOWN = _l("Unknown browser")


def describe(user_agent: str | None) -> str:
    """``"Chrome on Android"``; ``"Unknown browser"`` for an empty or unrecognised string, in
    the page's language."""
    browser, os_name = _parts(user_agent)
    if browser and os_name:
        return _("%(browser)s on %(system)s", browser=str(browser), system=os_name)
    if browser:
        return str(browser)
    if os_name:
        return _("A browser on %(system)s", system=os_name)
    return str(UNKNOWN)


@lru_cache(maxsize=512)
def _parts(user_agent: str | None) -> tuple:
    """(browser, system) as people name them, either None when unknown; parsed once."""
    text = (user_agent or "").strip()[:512]
    if not text:
        return None, None
    agent = parse_user_agent(text)
    system = parse_os(text)
    browser = _known(agent.family if agent else None)
    os_name = _known(system.family if system else None)
    browser = BROWSERS.get(browser, browser) if browser else None
    os_name = SYSTEMS.get(os_name, os_name) if os_name else None
    return browser, os_name


def _known(family: str | None) -> str | None:
    return None if not family or family == "Other" else family
