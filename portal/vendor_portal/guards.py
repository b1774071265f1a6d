"""The guard of vendor pages: a live vendor session of an approved vendor, nothing else.

``vendor_guarded`` marks the view for the route walker in tests/security, as
``required_permissions`` marks staff views.
"""

from __future__ import annotations

from functools import wraps

from flask import redirect, request, url_for

from portal.vendor_portal.sessions import current_vendor


def vendor_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_vendor() is None:
            target = request.path if request.method == "GET" else None
            return redirect(url_for("vendor.sign_in", next=target))
        return view(*args, **kwargs)

    wrapped.vendor_guarded = True
    return wrapped
