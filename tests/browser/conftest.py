"""Headless Chromium against the portal running as separate web and worker processes.

Chromium is Debian's (``/usr/bin/chromium``; ``make test`` installs it when missing), driven by
Playwright with ``executable_path``: Playwright's own browser download is not used.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import pytest

from tests.support import ci, stack

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_configure(config):
    ci.register(config)


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium():
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (make test installs it as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def live_portal(redis_db, portal_secrets, sqlite_factory, tmp_path_factory):
    """The portal as it runs in production: a web process and a Dramatiq worker process."""
    url = sqlite_factory()
    folder = tmp_path_factory.mktemp("browser-stack")
    env = stack.portal_env(
        database_url=url,
        redis_url=redis_db.url,
        instance_dir=folder / "instance",
        secrets=portal_secrets,
        # Events of other runs sharing this Redis stay out of this run's pages.
        SOCKETIO_CHANNEL=f"portal-browser-{secrets.token_hex(4)}",
    )
    email, password = f"staff-{secrets.token_hex(4)}@example.org", "a-long-browser-password-7"
    stack.create_user(env, email, password, role="admin")
    stack.enrol_two_factor(env, email)  # the policy is on: sign-ins type the app's code
    web = stack.WebServer(env, folder)
    worker = stack.Worker(env, folder, processes=1, threads=2)
    try:
        web.start()
        worker.start()
        web.wait_ready()
        worker.wait_ready()
        yield {
            "base": web.base_url,
            "email": email,
            "password": password,
            "web": web,
            "worker": worker,
        }
    finally:
        worker.stop()
        web.stop()


@pytest.fixture
def shots(tmp_path_factory):
    """Where screenshots go: ARTIFACTS_DIR when set (to look at them), else a temp folder."""
    folder = Path(os.environ.get("ARTIFACTS_DIR") or tmp_path_factory.mktemp("screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
