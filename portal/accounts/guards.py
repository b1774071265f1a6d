"""Route guards. Every view carries one: a permission, "signed in", or an explicit public mark.

The marks are attributes on the view function so that a test can walk the URL map and find any
route that carries none.
"""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required


def permission_required(*permissions: str):
    """Allow the view only to a signed-in user holding every permission named."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                from portal.extensions import login_manager

                return login_manager.unauthorized()
            if not all(current_user.can(p) for p in permissions):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_permissions = permissions
        return wrapped

    return decorator


def signed_in(view):
    """Any signed-in user: for pages about the user's own account."""
    wrapped = login_required(view)
    wrapped.required_permissions = ()
    wrapped.requires_login = True
    return wrapped


def public(view):
    """Reachable without signing in (sign-in page, health check)."""
    view.is_public = True
    return view
