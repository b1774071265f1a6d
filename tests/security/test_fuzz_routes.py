"""Every GET route, with hostile query parameters and path segments, answers without a 5xx.

Staff routes are walked as a signed-in admin, vendor routes with a vendor session, public routes
anonymously. Path parameters hold the ids of seeded objects, so the views go past their lookups
to the code that reads the query; then hostile ids and segments are tried in the path itself.
"""

from __future__ import annotations

import re

import pytest
from werkzeug.routing import IntegerConverter

from tests.security import fuzzing

pytestmark = pytest.mark.integration


app = fuzzing.app
world = fuzzing.world


@pytest.fixture
def logged(app):
    handler = fuzzing.ErrorLog()
    app.logger.addHandler(handler)
    yield handler
    app.logger.removeHandler(handler)


def _clients(app, client, world):
    """(client for staff routes, client for vendor routes, anonymous client)."""
    vendor = app.test_client()
    fuzzing.vendor_session(app, vendor, world.vendor)
    return client, vendor, app.test_client()


def _client_for(app, rule, clients):
    staff, vendor, anonymous = clients
    view = app.view_functions[rule.endpoint]
    if getattr(view, "is_public", False) or rule.endpoint == "static":
        return anonymous
    return vendor if getattr(view, "vendor_guarded", False) else staff


_PLAIN = {"fmt": "csv", "ext": "csv", "filename": "css/app.css"}


def _url(rule, ids) -> str:
    values = {arg: ids.get(arg, _PLAIN.get(arg, 1)) for arg in rule.arguments}
    return rule.build(values, append_unknown=False)[1]


def _get_rules(app):
    return sorted((r for r in app.url_map.iter_rules() if "GET" in r.methods), key=lambda r: r.rule)


def test_every_get_route_survives_hostile_query_parameters(app, client, world, logged):
    clients = _clients(app, client, world)
    failures: list[str] = []
    walked = 0
    for rule in _get_rules(app):
        user = _client_for(app, rule, clients)
        url = _url(rule, world.ids)
        names = set(fuzzing.COMMON_NAMES) | fuzzing.names_read(app.view_functions[rule.endpoint])

        def check(pairs, user=user, url=url):
            query = fuzzing.encode_query(pairs)
            response = user.get(url, query_string=query)
            response.get_data()  # streamed bodies (CSV) run their code here
            assert response.status_code < 500, (
                f"GET {url}?{query[:300]} -> {response.status_code} {logged.last}"
            )

        # Each name the view's module reads, alone, with each class of value that broke a
        # page once; then generated combinations over every name.
        for name in sorted(fuzzing.names_read(app.view_functions[rule.endpoint]) | {"page"}):
            for value in fuzzing.SHARP:
                try:
                    check([(name, value)])
                except AssertionError as exc:
                    failures.append(f"{rule.endpoint}: {exc}")
                    break
        failed = fuzzing.fuzz(12, fuzzing.query_pairs(names), check)
        if failed:  # every route is reported, not only the first to fail
            failures.append(f"{rule.endpoint}: {failed}")
        walked += 1
    assert walked >= 40, f"only {walked} GET routes found"
    assert not failures, "\n".join(failures)


def test_the_walk_reaches_the_views(app, client, world):
    """Seeded ids make the pages answer 200, so the walk tests views, not just 404 pages."""
    staff, vendor, anonymous = _clients(app, client, world)
    ok = [
        rule.endpoint
        for rule in _get_rules(app)
        if _client_for(app, rule, (staff, vendor, anonymous)).get(_url(rule, world.ids)).status_code
        == 200
    ]
    expected = {"beneficiaries.show", "projects.show", "vendors.show", "jobs.show", "vendor.home"}
    expected |= {"disbursements.show", "chain.transaction", "vendor.receipt", "vendor.code"}
    assert expected <= set(ok)
    assert len(ok) >= 35, ok


def test_hostile_path_segments(app, client, world, logged):
    clients = _clients(app, client, world)
    failures = []
    for rule in _get_rules(app):
        if not rule.arguments:
            continue
        user = _client_for(app, rule, clients)
        for arg in rule._converters:  # not the arguments a rule fills from its defaults
            numeric = isinstance(rule._converters[arg], IntegerConverter)
            values = fuzzing.HOSTILE_IDS if numeric else fuzzing.HOSTILE_SEGMENTS
            for value in values:
                path = rule.rule
                for other in rule.arguments:
                    chosen = value if other == arg else world.ids.get(other, _PLAIN.get(other, 1))
                    path = re.sub(rf"<[^>]*:?{other}>", str(chosen), path)
                response = user.get(path)
                response.get_data()
                if response.status_code >= 500:
                    failures.append(f"GET {path} -> {response.status_code} {logged.last}")
    assert not failures, "\n".join(failures)


def test_typed_parameters_answer_400_with_the_parameter_named(app, client, world):
    """Not only "no 500": a value not of its kind is a 400 that says which parameter."""
    cases = [
        "/beneficiaries/?project=²",
        "/beneficiaries/?project=" + "9" * 30,
        "/beneficiaries/?q=%00",
        "/jobs/?until=9999-12-31",
        "/audit/?until=9999-12-31",
        "/audit/?actor=-1",
        "/vendors/?page=" + "9" * 30,
        "/jobs/?kind=%1B",
    ]
    for url in cases:
        response = client.get(url)
        assert response.status_code == 400, url
        name = url.split("?")[1].split("=")[0]
        assert f"“{name}”" in response.get_data(as_text=True), url
    assert client.get("/audit/?until=2199-12-31").status_code == 200
    assert client.get("/beneficiaries/?project=&q=").status_code == 200
