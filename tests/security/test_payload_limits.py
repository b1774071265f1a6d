"""No input crashes a process: JSON is checked for size and nesting before decoding, bodies are
capped per route, the recursion limit is sane; and the headers of item 9 (no-store, no banner).

The process-level proof (the production web command survives a 100,000-deep packet) is in
``tests/integration/test_hostile_payloads.py``.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from http.client import HTTPConnection

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal import body_limits, payloads, stack_limits
from portal.extensions import db
from portal.imports import kobo
from portal.imports.models import KOBO, ImportSource

EXAMPLES = 600 if os.environ.get("CI") == "true" else 150
LIMIT = payloads.MAX_DEPTH
hypothesis_settings = settings(
    derandomize=True,
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --------------------------------------------------------------------------- the reference


def reference_decode(text: str):
    """The standard library's pure-Python decoder, instrumented: (ok, value, deepest level).

    It follows the same grammar as the C decoder the portal uses, one Python call per level,
    so the deepest level it reaches is how deep the C decoder would recurse on ``text``.
    """
    decoder = json.JSONDecoder()
    state = {"level": 0, "deepest": 0}

    def counted(parse):
        def parse_nested(*args, **kwargs):
            state["level"] += 1
            state["deepest"] = max(state["deepest"], state["level"])
            try:
                return parse(*args, **kwargs)
            finally:
                state["level"] -= 1

        return parse_nested

    decoder.parse_array = counted(json.decoder.JSONArray)
    decoder.parse_object = counted(json.decoder.JSONObject)
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    try:
        return True, decoder.decode(text), state["deepest"]
    except ValueError:
        return False, None, state["deepest"]


def structural_depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((structural_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((structural_depth(v) for v in value.values()), default=0)
    return 0


# Strings full of what a naive scan would miscount: brackets, quotes, backslashes, escapes.
tricky_text = st.text(alphabet=st.sampled_from([*'[]{}"\\/:,ab \n\t', "é", "ह", "\u2028"]))
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | tricky_text
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(tricky_text, children, max_size=3)
    ),
    max_leaves=12,
)


@st.composite
def nested_documents(draw):
    """A JSON value wrapped in 0 to LIMIT+4 arrays and objects, mixed."""
    value = draw(json_values)
    for as_object in draw(st.lists(st.booleans(), max_size=LIMIT + 4)):
        key = draw(tricky_text)
        value = {key: value} if as_object else [draw(scalars), value]
    return value


@hypothesis_settings
@given(
    value=nested_documents(),
    ascii_only=st.booleans(),
    encoding=st.sampled_from([None, "utf-8", "utf-16", "utf-16-le", "utf-32-be"]),
)
def test_check_agrees_with_the_structure_of_valid_json(value, ascii_only, encoding):
    text = json.dumps(value, ensure_ascii=ascii_only)
    data = text if encoding is None else text.encode(encoding)
    expected = structural_depth(value)
    assert payloads.depth(text, limit=LIMIT) == min(expected, LIMIT + 1)
    if expected > LIMIT:
        with pytest.raises(payloads.PayloadRefused):
            payloads.check(data)
    else:
        assert payloads.check(data) == text
        assert repr(payloads.loads(data)) == repr(json.loads(text)) == repr(value)


# Openers that put brackets, escaped quotes and backslashes in strings between the levels.
OPENERS = ["[", '{"k":', '["[[\\"{",', '{"}}]]\\\\":', '[{"a":[', " [\n", '{"\\u005b":']


@hypothesis_settings
@given(
    levels=st.one_of(
        st.integers(LIMIT - 3, LIMIT + 3),
        st.integers(LIMIT + 4, 2_000),
        st.sampled_from([100_000, 250_000]),
    ),
    openers=st.lists(st.sampled_from(OPENERS), min_size=1, max_size=4),
    closed=st.booleans(),
)
def test_deep_documents_are_refused_before_decoding(levels, openers, closed):
    pattern = "".join(openers)
    opened = sum(payloads.depth(o, 10) for o in openers)
    text = pattern * (levels // opened + 1)
    deepest = opened * (levels // opened + 1)
    if closed:
        text += "1" + "]}" * deepest  # not valid JSON, but every level is opened
    if deepest > LIMIT:
        with pytest.raises(payloads.PayloadRefused) as refused:
            payloads.check(text, max_bytes=len(text) + 1)
        assert refused.value.status == 400
    else:
        payloads.check(text)
        reference_decode(text)  # shallow: safe to decode either way


structural = st.sampled_from([*'[]{}",:\\ 0a1-.eE', "true", "null", '\\"', "\\u0022"])


@hypothesis_settings
@given(text=st.lists(structural | st.characters(), max_size=120).map("".join))
def test_any_text_is_refused_or_decodes_shallowly(text):
    try:
        payloads.check(text)
    except payloads.PayloadRefused:
        ok, _, deepest = reference_decode(text)
        assert not (ok and deepest <= LIMIT), "a valid, shallow document was refused"
        return
    ok, value, deepest = reference_decode(text)
    assert deepest <= LIMIT
    try:
        decoded = json.loads(text)
    except ValueError:
        assert not ok
    else:
        assert ok and repr(decoded) == repr(value)


def test_size_is_checked_first():
    with pytest.raises(payloads.PayloadRefused) as refused:
        payloads.check("[]" * 10, max_bytes=19)
    assert refused.value.status == 413


def test_undecodable_bytes_are_left_to_the_decoder():
    # Bytes that are text in no JSON encoding: the decoder refuses them before parsing.
    deep = b"\x80\x81" + b"[" * 100_000
    assert payloads.check(deep) is None
    with pytest.raises(UnicodeDecodeError):
        payloads.loads(deep)


# --------------------------------------------------------------------------- recursion


def test_recursion_limit_is_sane_after_the_modules_that_raise_it(app):
    import eth  # noqa: F401
    import eth_tester  # noqa: F401
    import py_ecc  # noqa: F401
    import web3  # noqa: F401

    import portal.chain.embedded  # noqa: F401

    assert sys.getrecursionlimit() == stack_limits.RECURSION_LIMIT
    assert threading.stack_size() == stack_limits.THREAD_STACK_BYTES


def test_a_thread_survives_deep_json_with_the_check_bypassed(app):
    """The safety net behind the check: too deep for the limit is a RecursionError, no crash."""
    outcome = []

    def decode():
        try:
            json.loads("[" * 200_000)
        except RecursionError:
            outcome.append("RecursionError")

    worker = threading.Thread(target=decode)
    worker.start()
    worker.join()
    assert outcome == ["RecursionError"]


# --------------------------------------------------------------------------- HTTP entries


def basic(secret: str) -> dict:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"portal:{secret}".encode()).decode()}


@pytest.fixture
def webhook(make_project):
    project = make_project(status="active")
    source = ImportSource(
        name="Survey", kind=KOBO, kobo_asset_uid="aB3xYz9QwE", kobo_token="t", project_id=project.id
    )
    db.session.add(source)
    db.session.flush()
    secret = kobo.new_webhook_secret(source)
    db.session.commit()
    return f"/api/kobo/{source.id}/submissions", basic(secret)


@pytest.mark.parametrize("levels", [LIMIT + 1, 1_000, 100_000])
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deep_webhook_body_gets_a_problem_and_the_app_serves_on(client, webhook, levels, opener):
    url, auth = webhook
    reply = client.post(url, data=opener * levels, headers=auth, content_type="application/json")
    assert reply.status_code == 400
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert f"nested more than {LIMIT} levels" in reply.get_json()["detail"]
    assert client.get("/health").status_code in (200, 503)


def test_webhook_body_over_its_limit_is_413(client, webhook):
    url, auth = webhook
    body = '{"a": "' + "x" * payloads.MAX_BYTES + '"}'
    reply = client.post(url, data=body, headers=auth, content_type="application/json")
    assert reply.status_code == 413
    assert reply.headers["Content-Type"] == "application/problem+json"


def test_a_shallow_webhook_body_still_imports(client, webhook):
    url, auth = webhook
    reply = client.post(url, json={"_uuid": "u-1", "name": "x"}, headers=auth)
    assert reply.status_code in (201, 200, 422), reply.get_data(as_text=True)


def test_every_json_body_is_checked(app, client):
    from flask import jsonify, request

    from portal.accounts.guards import public

    @app.post("/api/echo-for-test")
    @public
    def echo():
        return jsonify(request.get_json(silent=True))

    assert client.post("/api/echo-for-test", json={"a": [[1]]}).get_json() == {"a": [[1]]}
    reply = client.post("/api/echo-for-test", data="[" * 50_000, content_type="application/json")
    assert reply.status_code == 400, reply.get_data(as_text=True)
    assert reply.get_json()["status"] == 400


def _socket_handshake(client) -> str:
    reply = client.get("/socket.io/?EIO=4&transport=polling")
    assert reply.status_code == 200
    assert reply.headers["Cache-Control"] == "no-store"
    return json.loads(reply.get_data(as_text=True)[1:])["sid"]


def _socket_post(client, sid: str, body: str):
    return client.post(
        f"/socket.io/?EIO=4&transport=polling&sid={sid}",
        data=body.encode(),
        content_type="text/plain;charset=UTF-8",
    )


@pytest.mark.parametrize(
    "packet",
    [
        "42" + "[" * 20_000,  # a Socket.IO event nested 20,000 deep
        '42["subscribe",' + '{"a":' * 5_000 + "1" + "}" * 5_000 + "]",
        "4" + "[" * 20_000,  # an Engine.IO message that is JSON itself
        "4" + "{}" * 20 + '"',  # malformed
    ],
)
def test_deep_socket_packet_closes_that_connection_only(app, client, packet, caplog):
    bystander = _socket_handshake(client)
    sid = _socket_handshake(client)
    assert _socket_post(client, sid, packet).status_code == 200
    assert "undecodable packet" in caplog.text
    # That connection is gone; another one, and the app, are not.
    assert _socket_post(client, sid, "40").status_code == 400
    assert _socket_post(client, bystander, "40").status_code == 200
    assert client.get("/health").status_code in (200, 503)


def test_socket_body_over_the_cap_is_refused(client):
    sid = _socket_handshake(client)
    reply = _socket_post(client, sid, "42" + json.dumps(["x" * payloads.SOCKET_MAX_BYTES]))
    assert reply.status_code == 413
    assert client.get("/health").status_code in (200, 503)


# --------------------------------------------------------------------------- body limits


def _post_rules(app):
    return [r for r in app.url_map.iter_rules() if "POST" in (r.methods or ())]


def test_larger_limits_name_real_routes(app):
    endpoints = {r.endpoint for r in _post_rules(app)}
    assert set(body_limits.LARGER) <= endpoints
    assert app.config["MAX_CONTENT_LENGTH"] <= 64 * 1024


def test_every_post_route_refuses_a_body_over_its_limit_unread(app, client):
    """One byte over the route's limit: 413 whatever the route, nothing read."""
    for rule in _post_rules(app):
        limit = body_limits.limit_for(rule.endpoint, app.config)
        url = rule.build({arg: 1 for arg in rule.arguments}, append_unknown=False)[1]
        stream = _CountingStream()
        reply = _raw_post(client, url, stream, CONTENT_LENGTH=str(limit + 1))
        assert reply.status_code == 413, (rule.endpoint, reply.status_code)
        assert stream.read_bytes == 0, rule.endpoint


def _raw_post(client, url: str, stream, **environ):
    """POST with ``stream`` as the body, read only as far as the server reads it."""
    return client.post(
        url,
        content_type="application/x-www-form-urlencoded",
        environ_overrides={"wsgi.input": stream, **environ},
    )


class _CountingStream(io.RawIOBase):
    """A body that is never-ending zeros, counting what the server reads of it."""

    def __init__(self):
        self.read_bytes = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        self.read_bytes += len(buffer)
        buffer[:] = b"0" * len(buffer)
        return len(buffer)


def test_fifty_megabytes_to_login_is_413_at_once(client):
    started = time.monotonic()
    stream = _CountingStream()
    reply = _raw_post(client, "/login", stream, CONTENT_LENGTH=str(50 * 1024 * 1024))
    assert reply.status_code == 413
    assert stream.read_bytes == 0
    assert "larger than this page accepts (64 KB)" in reply.get_data(as_text=True)
    assert time.monotonic() - started < 2


def test_a_body_without_a_declared_length_is_refused_unread(client):
    """Werkzeug would cut a chunked body at the limit and parse the rest as if whole."""
    stream = _CountingStream()
    reply = _raw_post(
        client,
        "/login",
        stream,
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input_terminated": True},  # as gunicorn says of chunked bodies
    )
    assert reply.status_code == 411
    assert stream.read_bytes == 0


def test_an_upload_route_takes_more_than_the_default(app, make_user, login, client):
    login(client, make_user("admin"))
    limit = body_limits.limit_for("imports.new", app.config)
    assert limit > app.config["IMPORT_MAX_BYTES"]
    body = b"x" * (256 * 1024)  # over the default, under the upload limit
    reply = client.post(
        "/imports/new",
        data={"file": (io.BytesIO(body), "people.csv")},
        content_type="multipart/form-data",
    )
    assert reply.status_code == 200  # the form answers (here: field errors), not 413


# --------------------------------------------------------------------------- headers


def _get_routes(app):
    return [
        r
        for r in app.url_map.iter_rules()
        if "GET" in (r.methods or ()) and not r.arguments and r.endpoint != "static"
    ]


def test_every_page_says_no_store(app, client, make_user, login):
    login(client, make_user("admin"))
    for rule in _get_routes(app):
        reply = client.get(rule.rule)
        assert reply.headers.get("Cache-Control") == "no-store", rule.endpoint
    export = client.post("/beneficiaries/export.csv", data={})
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert export.headers.get("Cache-Control") == "no-store"


def test_static_files_keep_their_caching(client):
    reply = client.get("/static/css/portal.css")
    assert reply.status_code == 200
    assert reply.headers.get("Cache-Control") != "no-store"


def test_development_server_sends_no_banner(app):
    from werkzeug.serving import make_server

    from portal.serving import QuietRequestHandler

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    runner = threading.Thread(target=server.serve_forever, daemon=True)
    runner.start()
    try:
        connection = HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        connection.request("GET", "/login")
        reply = connection.getresponse()
        reply.read()
        assert reply.status == 200
        assert reply.getheader("Server") is None
        assert reply.getheader("Cache-Control") == "no-store"
    finally:
        server.shutdown()
        runner.join(timeout=10)


def test_gunicorn_response_head_has_no_server_line():
    from gunicorn.http import wsgi

    from portal.serving import hide_gunicorn_banner

    hide_gunicorn_banner()

    class Request:
        version = (1, 1)
        method = "GET"

        def should_close(self):
            return False

    response = wsgi.Response(Request(), sock=None, cfg=None)
    response.status = "200 OK"
    response.status_code = 200
    response.response_length = 0
    head = "".join(response.default_headers())
    assert "server:" not in head.lower() and head.startswith("HTTP/1.1 200 OK")


# --------------------------------------------------------------------------- uploads


def _xlsx(tmp_path, part: str, edit) -> str:
    """A real two-row workbook with one of its XML parts edited."""
    import zipfile

    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["Full name", "Mobile"])
    book.active.append(["Asha", "9841000001"])
    plain = io.BytesIO()
    book.save(plain)
    path = tmp_path / "hostile.xlsx"
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            data = source.read(info.filename)
            out.writestr(info.filename, edit(data) if info.filename == part else data)
    return path


def _read_xlsx(path):
    from portal.imports import parsing

    with parsing.open_table(path, "people.xlsx") as table:
        return table.headers, list(table.rows())


SHEET = "xl/worksheets/sheet1.xml"


def test_openpyxl_reads_workbook_parts_with_defusedxml():
    import openpyxl.xml

    assert openpyxl.xml.DEFUSEDXML and not openpyxl.xml.LXML


DEEP_XML = b"<x>" * 200_000 + b"</x>" * 200_000


@pytest.mark.parametrize(
    ("part", "marker"), [("xl/styles.xml", b"</styleSheet>"), ("xl/workbook.xml", b"</workbook>")]
)
def test_deeply_nested_workbook_xml_is_harmless(tmp_path, part, marker):
    path = _xlsx(tmp_path, part, lambda data: data.replace(marker, DEEP_XML + marker, 1))
    assert _read_xlsx(path)[0] == ["Full name", "Mobile"]


def test_a_deeply_nested_sheet_is_refused(tmp_path):
    from portal.imports import parsing

    path = _xlsx(tmp_path, SHEET, lambda data: data.replace(b"<sheetData>", DEEP_XML, 1))
    with pytest.raises(parsing.FileRejected):
        _read_xlsx(path)


def test_a_sheet_stuffed_outside_its_rows_is_refused(tmp_path):
    from portal.imports import parsing

    junk = b"<x/>" * (parsing.XLSX_MAX_LOOSE_ELEMENTS + 1)
    path = _xlsx(tmp_path, SHEET, lambda data: data.replace(b"<sheetData>", junk + b"<sheetData>"))
    with pytest.raises(parsing.FileRejected, match="too much besides its rows"):
        _read_xlsx(path)


def test_a_row_wider_than_excel_allows_is_refused(tmp_path):
    from portal.imports import parsing

    cells = b'<c t="n"><v>1</v></c>' * (parsing.XLSX_MAX_ROW_ELEMENTS // 2 + 1)
    path = _xlsx(tmp_path, SHEET, lambda data: data.replace(b"</row>", cells + b"</row>", 1))
    with pytest.raises(parsing.FileRejected, match="more cells than Excel allows"):
        _read_xlsx(path)


def test_csv_with_an_endless_field_is_refused_unread(tmp_path):
    from portal.imports import parsing

    path = tmp_path / "people.csv"
    path.write_bytes(b'Full name,Mobile\n"' + b"x" * (3 * parsing.FIELD_LIMIT) + b"\n")
    with pytest.raises(parsing.FileRejected):
        _read_xlsx_or_csv(path, "people.csv")


def _read_xlsx_or_csv(path, name):
    from portal.imports import parsing

    with parsing.open_table(path, name) as table:
        return list(table.rows())
