"""Where a ``next`` parameter may send the browser: a path on this site, or nowhere.

Browsers parse a Location header by the WHATWG URL rules, not by Python's: they drop ASCII tabs
and newlines anywhere, trim leading control characters and spaces, and read a backslash as a
slash. So ``/\\t/evil.example`` reaches Python as a path but a browser as ``//evil.example``,
another host. Rather than model every such rewrite, a target holding any character a browser
might drop or reinterpret is refused whole, and what is left must parse as a path-absolute URL.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote, urlsplit, urlunsplit

# Longer than any link the portal makes; a longer one is crafted.
MAX_TARGET = 2048

# Printable ASCII a path and query may hold as they are; everything else is percent-encoded.
_KEEP = "/?&=;:@!$'()*+,-._~%#"


def _suspicious(ch: str) -> bool:
    # Controls (C0, DEL, C1), every kind of space, format characters (zero-width, bidi), lone
    # surrogates, and the backslash that browsers read as a slash.
    if ch == "\\" or ch.isspace():
        return True
    return unicodedata.category(ch)[0] in {"C", "Z"}


def safe_next(value: object, fallback: str, *, under: str = "/") -> str:
    """``value`` if it is a same-site path below ``under``, else ``fallback``.

    The answer never has a scheme or a host, never starts with ``//``, holds only printable
    ASCII (non-ASCII is percent-encoded) and drops any fragment.
    """
    if not isinstance(value, str) or not value or len(value) > MAX_TARGET:
        return fallback
    if any(_suspicious(ch) for ch in value):
        return fallback
    encoded = quote(value, safe=_KEEP)
    if encoded.startswith("//"):  # a host follows, even when urlsplit finds none ("///x")
        return fallback
    parts = urlsplit(encoded)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return fallback
    if parts.path.startswith("//"):
        return fallback
    if under != "/":
        base = under.rstrip("/")
        if parts.path != base and not parts.path.startswith(base + "/"):
            return fallback
    return urlunsplit(("", "", parts.path, parts.query, ""))
