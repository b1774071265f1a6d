"""Every POST route, with hostile field values, answers without a 5xx; text fields refuse controls.

The fields of each form are read from the pages that show it (with the values the page offers
as a baseline, so that one hostile field at a time gets past the others' checks); a POST route
no page links to is sent the fields its module reads and every form field name. CSRF is off in
the test configuration (its check is tested in test_route_guards and the browser suites).
"""

from __future__ import annotations

import io

import pytest
from hypothesis import strategies as st

from portal.forms import Form
from tests.security import fuzzing

pytestmark = pytest.mark.integration

# Routes that end the walking session or change what the walk can reach come last.
_LAST = ("logout", "sign_out", "revoke", "status", "discard", "cancel", "commit")


app = fuzzing.app
world = fuzzing.world


def _kind(app, rule) -> str:
    view = app.view_functions[rule.endpoint]
    if getattr(view, "is_public", False):
        return "public"
    return "vendor" if getattr(view, "vendor_guarded", False) else "staff"


def _url(rule, ids) -> str:
    values = {arg: ids.get(arg, {"fmt": "csv", "ext": "csv"}.get(arg, 1)) for arg in rule.arguments}
    return rule.build(values, append_unknown=False)[1]


def _discover(app, clients, ids) -> dict[str, list[fuzzing.FoundForm]]:
    """Endpoint -> the forms the GET pages show for it."""
    adapter = app.url_map.bind("localhost")
    found: dict[str, list[fuzzing.FoundForm]] = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        response = clients[_kind(app, rule)].get(_url(rule, ids))
        if response.status_code != 200 or "html" not in response.content_type:
            continue
        for form in fuzzing.forms_in(_url(rule, ids), response.get_data(as_text=True)):
            try:
                endpoint, _ = adapter.match(form.action, method="POST")
            except Exception:  # noqa: S112 - a form posting elsewhere (another host)
                continue
            found.setdefault(endpoint, []).append(form)
    return found


def _fields_for(app, rule, discovered, fallback):
    forms = discovered.get(rule.endpoint, [])
    baseline: dict[str, str] = {}
    files: set[str] = set()
    for form in forms:
        baseline.update(form.fields)
        files |= form.files
    baseline = {k: v or fuzzing.PLAUSIBLE.get(k, v) for k, v in baseline.items()}
    names = set(baseline) | fuzzing.names_read(app.view_functions[rule.endpoint])
    if not forms or not names:
        # No page shows a form for it, or only a button (no fields: CSRF is off here): it is
        # sent every form field name.
        names |= fallback
    return baseline, files, sorted(names)


def test_every_post_route_survives_hostile_field_values(app, client, world, login):
    logged = fuzzing.ErrorLog()
    app.logger.addHandler(logged)
    vendor = app.test_client()
    fuzzing.vendor_session(app, vendor, world.vendor)
    clients = {"staff": client, "vendor": vendor, "public": app.test_client()}
    discovered = _discover(app, clients, world.ids)
    assert len(discovered) >= 25, sorted(discovered)
    fallback = fuzzing.form_field_names()
    rules = sorted(
        (r for r in app.url_map.iter_rules() if "POST" in r.methods),
        key=lambda r: (any(word in r.endpoint for word in _LAST), r.rule),
    )
    failures = []
    for rule in rules:
        kind = _kind(app, rule)
        user = clients[kind]
        # Each route starts signed in: a route before it may have ended the session.
        if kind == "staff":
            login(client, world.admin)
        elif kind == "vendor":
            fuzzing.vendor_session(app, vendor, world.vendor)
        url = _url(rule, world.ids)
        baseline, files, names = _fields_for(app, rule, discovered, fallback)
        changes = st.lists(
            st.tuples(st.sampled_from(names), fuzzing.hostile_text), min_size=1, max_size=4
        )

        def post(changed, user=user, url=url, baseline=baseline, files=files):
            data: dict[str, list] = {name: [value] for name, value in baseline.items()}
            replaced = set()
            for name, value in changed:  # a name drawn twice is sent twice
                value = fuzzing.form_value(value)
                data[name] = [*data[name], value] if name in replaced else [value]
                replaced.add(name)
            for name in files:
                data[name] = [(io.BytesIO(b"name,phone\nSita Rai,9841000001\n"), "list.csv")]
            response = user.post(
                url, data=data, content_type="multipart/form-data" if files else None
            )
            response.get_data()
            assert response.status_code < 500, (
                f"POST {url} {changed!r:.400} -> {response.status_code} {logged.last}"
            )

        # Each field the page shows or the view reads, alone, with each class of value that
        # broke something once; then generated combinations over every name.
        for name in sorted(set(baseline) | fuzzing.names_read(app.view_functions[rule.endpoint])):
            for value in fuzzing.SHARP:
                try:
                    post([(name, value)])
                except AssertionError as exc:
                    failures.append(f"{rule.endpoint}: {exc}")
                    break
        failed = fuzzing.fuzz(8, changes, post)
        if failed:
            failures.append(f"{rule.endpoint}: {failed}")
    app.logger.removeHandler(logged)
    assert not failures, "\n".join(failures)


def _all_forms():
    stack, found = [Form], []
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        found.append(cls)
    return found[1:]


def test_every_form_is_a_portal_form(app):
    """The rule lives in ``Form``: no form may bypass it by subclassing FlaskForm directly."""
    from flask_wtf import FlaskForm

    stack, strays = [FlaskForm], []
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("portal.") and not issubclass(cls, Form):
            strays.append(f"{cls.__module__}.{cls.__name__}")
    assert not strays
    assert len(_all_forms()) >= 20


def test_a_nul_in_a_form_is_a_field_error_not_a_500(app, client, world):
    response = client.post("/projects/new", data={"name": "Relief\x00", "type": "cva"})
    assert response.status_code == 200
    assert "Name contains a control character; remove it." in response.get_data(as_text=True)
    response = client.post("/vendors/new", data={"name": "Shop", "contact_name": "\x1b[2J"})
    assert "Owner or contact contains a control character" in response.get_data(as_text=True)


def test_the_kobo_webhook_survives_hostile_submissions(app, client, world):
    """The JSON entry: hostile question names and answers, ids of every JSON type."""
    from portal.extensions import db
    from portal.imports import kobo
    from portal.imports.models import ImportSource

    source = db.session.get(ImportSource, world.ids["source_id"])
    secret = kobo.new_webhook_secret(source)
    db.session.commit()
    url = f"/api/kobo/{source.id}/submissions"
    answer = st.one_of(
        fuzzing.hostile_text,
        st.integers(min_value=-(10**30), max_value=10**30),
        st.booleans(),
        st.none(),
        st.lists(fuzzing.hostile_text, max_size=2),
    )
    submission = st.fixed_dictionaries(
        {
            "_uuid": answer,
            "name": answer,
            "phone": st.one_of(answer, st.just("9841000077")),
        },
        optional={"meta/instanceID": answer},
    ).flatmap(
        lambda base: st.dictionaries(fuzzing.hostile_text, answer, max_size=3).map(
            lambda extra: {**extra, **base}
        )
    )

    def check(payload):
        response = client.post(url, json=payload, headers={"X-Portal-Secret": secret})
        assert response.status_code < 500, (payload, response.status_code)
        body = response.get_json()
        assert isinstance(body, dict)

    assert fuzzing.fuzz(40, submission, check) is None
    refused = client.post(
        url, json={"_uuid": "u-1", "name": "Sita\x1b[31m"}, headers={"X-Portal-Secret": secret}
    )
    assert refused.status_code == 422
    assert "control character" in refused.get_json()["detail"]
