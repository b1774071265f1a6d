"""The grievance list pages by keyset (newer and older by id), and every page keeps the
filters it was asked with."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.extensions import db
from portal.grievances import routes, services

REF = re.compile(r'data-grievance-id="(\d+)"')


@pytest.fixture
def listing(app, client, login, make_project, make_beneficiary, make_user, monkeypatch):
    monkeypatch.setattr(routes, "PAGE_SIZE", 3)
    project = make_project(status="active")
    person = make_beneficiary(project=project, phone="9841000077")
    manager = make_user("programme manager")
    from portal.projects import services as projects

    projects.set_members(project, {manager.id})
    ids = {"payment": [], "other": []}
    for i in range(11):
        kind = "payment" if i % 3 else "other"
        g = services.open_grievance(
            "staff", "Words", type_=kind, beneficiary=person, created_by=manager, tell_person=False
        )
        ids[kind].append(g.id)
    db.session.commit()
    login(client, manager)
    return client, ids


def _walk(client, url: str, rel: str) -> tuple[list[int], list[str]]:
    """Follow the ``rel`` links from ``url`` to the end: the ids in page order, and the URLs."""
    seen, urls = [], [url]
    while True:
        page = client.get(url).get_data(as_text=True)
        ids = [int(i) for i in REF.findall(page)]
        seen.append(ids)
        found = re.search(rf'<a href="([^"]+)" rel="{rel}">', page)
        if not found:
            return seen, urls
        url = html.unescape(found.group(1))
        urls.append(url)


def test_older_pages_walk_every_match_once_keeping_the_filters(listing):
    client, ids = listing
    pages, urls = _walk(client, "/grievances/?type=payment&status=new", "next")
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == sorted(ids["payment"], reverse=True)
    assert all("type=payment" in u and "status=new" in u for u in urls)
    # And back: newer pages from the last one give the same pages in reverse.
    back, back_urls = _walk(client, urls[-1], "prev")
    assert back == list(reversed(pages))
    assert all("type=payment" in u for u in back_urls)
    last = client.get(urls[-1]).get_data(as_text=True)
    assert "First page" in last


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cursor=st.integers(1, 2**31 - 1))
def test_any_cursor_gives_a_page_of_matches_only(listing, cursor):
    client, ids = listing
    page = client.get(f"/grievances/?type=other&after={cursor}").get_data(as_text=True)
    shown = [int(i) for i in REF.findall(page)]
    expected = sorted((i for i in ids["other"] if i < cursor), reverse=True)[:3]
    assert shown == expected


def test_a_bad_cursor_is_refused(listing):
    client, _ = listing
    assert client.get("/grievances/?after=abc").status_code == 400
