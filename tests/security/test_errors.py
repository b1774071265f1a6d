"""Friendly error pages, JSON problems for API clients, CSRF, and the sign-in rate limit."""

from __future__ import annotations

import re

from config import TestConfig
from portal import create_app
from portal.extensions import db


def test_not_found_page(client, make_user, login):
    login(client, make_user("admin"))
    response = client.get("/projects/999999")
    assert response.status_code == 404
    assert b"Page not found" in response.data and b"No such project." in response.data


def test_forbidden_page_is_friendly(client, make_user, login):
    login(client, make_user("viewer"))
    response = client.get("/roles")
    assert response.status_code == 403
    assert b"You do not have access to this" in response.data


def test_json_clients_get_a_problem_body(client, make_user, login):
    login(client, make_user("admin"))
    response = client.get("/projects/999999", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.get_json() == {
        "type": "about:blank",
        "title": "Page not found",
        "status": 404,
        "detail": "No such project.",
    }


def test_unexpected_error_shows_the_500_page(app, client):
    @app.get("/boom-for-test")
    def boom():
        raise RuntimeError("kaboom")

    response = client.get("/boom-for-test")
    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.data
    assert b"kaboom" not in response.data


def test_forms_without_csrf_token_are_refused():
    class WithCsrf(TestConfig):
        WTF_CSRF_ENABLED = True

    app = create_app(WithCsrf)
    with app.app_context():
        db.create_all()
        client = app.test_client()
        response = client.post("/login", data={"email": "a@b.org", "password": "x" * 12})
        assert response.status_code == 400
        assert b"The form expired" in response.data
        page = client.get("/login").data.decode()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        response = client.post(
            "/login", data={"email": "a@b.org", "password": "x" * 12, "csrf_token": token}
        )
        assert response.status_code == 401  # the token passed; the password did not
        db.drop_all()


def test_sign_in_is_rate_limited_per_address():
    class Limited(TestConfig):
        LOGIN_RATE_LIMIT = "3 per minute"

    app = create_app(Limited)
    with app.app_context():
        db.create_all()
        client = app.test_client()
        codes = [
            client.post(
                "/login", data={"email": "a@b.org", "password": "wrong-password!"}
            ).status_code
            for _ in range(4)
        ]
        assert codes == [401, 401, 401, 429]
        assert client.get("/login").status_code == 200  # reading the form is not limited
        db.drop_all()
