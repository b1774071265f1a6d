"""A browser's user-agent string as people say it: "Chrome on Android", "Firefox on Windows".

The parsing is ua-parser's (the regexes of the uap-core project, kept up to date in the
ua-parser-builtins package); this module only turns its families into the names people use.
"""

from __future__ import annotations

from functools import lru_cache

from ua_parser import parse_os, parse_user_agent

# ua-parser's families, as people name them (a phone's Chrome is still Chrome).
BROWSERS = {
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "an Android app",
    "HeadlessChrome": "Chrome (automated)",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "an iPhone app",
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
UNKNOWN = "Unknown browser"


@lru_cache(maxsize=512)
def describe(user_agent: str | None) -> str:
    """``"Chrome on Android"``; ``"Unknown browser"`` for an empty or unrecognised string."""
    text = (user_agent or "").strip()[:512]
    if not text:
        return UNKNOWN
    agent = parse_user_agent(text)
    system = parse_os(text)
    browser = _known(agent.family if agent else None)
    os_name = _known(system.family if system else None)
    browser = BROWSERS.get(browser, browser) if browser else None
    os_name = SYSTEMS.get(os_name, os_name) if os_name else None
    if browser and os_name:
        return f"{browser} on {os_name}"
    if browser:
        return browser
    if os_name:
        return f"A browser on {os_name}"
    return UNKNOWN


def _known(family: str | None) -> str | None:
    return None if not family or family == "Other" else family
