"""Two-factor for tests: enrol a user in code, and compute the codes their app would show.

The policy stays on in every test: fixtures enrol the users they sign in and type the code the
way a person would. The server takes a code once per 30-second step (and one step either side),
so ``Authenticator.code()`` hands out each step once per process, waiting for the next step when
the ones it may use are spent.
"""

from __future__ import annotations

import re
import threading
import time

from portal.twofactor import totp

_lock = threading.Lock()
_last_step: dict[str, int] = {}
# Email -> secret of every user enrolled by this process (or by a stack it started), so the
# sign-in helpers type a code exactly when the portal asks for one.
_secrets: dict[str, str] = {}


def register(email: str, secret: str, used_step: int) -> None:
    """Remember a user's secret and the step their set-up spent."""
    with _lock:
        _secrets[email.strip().lower()] = secret
        _last_step[secret] = max(_last_step.get(secret, 0), used_step)


def secret_for(email: str) -> str | None:
    return _secrets.get(email.strip().lower())


def enrol(user) -> tuple[str, list[str]]:
    """Set up two-factor for ``user`` through the services, in the caller's transaction.
    Returns (secret, recovery codes)."""
    from portal.twofactor import services

    row = services.begin(user)
    codes = services.confirm(user, totp.code_at(row.secret, totp.current_step()))
    register(user.email, row.secret, row.last_step)  # the set-up spent this step
    return row.secret, codes


def code(secret: str) -> str:
    """A code the server has not seen for this secret (this process's count): the current
    step's or the next one's, else wait for a fresh step."""
    while True:
        with _lock:
            now = totp.current_step()
            step = max(_last_step.get(secret, 0) + 1, now)
            if step <= now + totp.WINDOW:
                _last_step[secret] = step
                return totp.code_at(secret, step)
        time.sleep(max(0.05, totp.STEP_SECONDS - time.time() % totp.STEP_SECONDS))


def secret_from_setup_page(html: str) -> str:
    """The key the set-up page shows for typing by hand (grouped by four)."""
    found = re.search(r"data-secret>([A-Z2-7 ]+)<", html)
    if not found:
        raise AssertionError("the set-up page shows no key")
    return found.group(1).replace(" ", "")


def secret_row_step(user) -> int:
    """The step the user's last accepted code (their set-up) spent."""
    from portal.twofactor import services

    return services.secret_row(user).last_step
