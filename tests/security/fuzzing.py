"""What the fuzz walk shares: a PostgreSQL app, seeded objects, hostile values, form discovery.

The walk runs on PostgreSQL because that is where most hostile values used to fail (a NUL byte in
a query parameter, an id past the ``integer`` range), not in SQLite.
Examples per input are few by default, so the walk stays within a couple of minutes; ``CI=true``
multiplies them.
"""

from __future__ import annotations

import inspect
import io
import logging
import re
import string
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser
from urllib.parse import quote, urlsplit

import pytest
from flask import g
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from config import TestConfig
from portal import create_app
from portal.extensions import db
from tests.support import ci

SCALE = 4 if ci.ci_enabled() else 1


def fuzz_settings(examples: int):
    """Fixed seed, no example database, no deadline (the machine is shared and loaded)."""
    return settings(
        max_examples=examples * SCALE,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )


def fuzz(examples: int, strategy, check) -> str | None:
    """Run ``check`` on generated values; the failure (after shrinking), or None.

    Returned rather than raised, so a walk reports every input that fails, not the first.
    """

    @fuzz_settings(examples)
    @given(strategy)
    def run(value):
        check(value)

    try:
        run()
    except Exception as exc:
        found = exc.exceptions if isinstance(exc, ExceptionGroup) else (exc,)
        return " | ".join(f"{type(e).__name__}: {str(e)[:600]}" for e in found)
    return None


# --- the app --------------------------------------------------------------------------------


def postgres_app(pg_service, tmp_path, **overrides):
    """Like the root ``app`` fixture, on a fresh PostgreSQL database (dropped afterwards)."""
    from portal.accounts.services import seed_roles

    name = pg_service.create_database("portal_fuzz")
    app = create_app(
        TestConfig,
        INSTANCE_DIR=str(tmp_path / "instance"),
        SQLALCHEMY_DATABASE_URI=pg_service.sqlalchemy_url(name),
        # The walk sends many requests from one address: limits are tested elsewhere.
        VENDOR_CODE_PHONE_LIMIT="100000 per minute",
        VENDOR_CODE_IP_LIMIT="100000 per minute",
        VENDOR_CODE_ENTRY_LIMIT="100000 per minute",
        VENDOR_CHARGE_LIMIT="100000 per minute",
        LOGIN_RATE_LIMIT="100000 per minute",
        RATELIMIT_ENABLED=False,
        **overrides,
    )

    def _forget_cached_user():
        g.pop("_login_user", None)

    app.before_request_funcs.setdefault(None, []).insert(0, _forget_cached_user)
    try:
        with app.app_context():
            db.create_all()
            seed_roles()
            db.session.commit()
            yield app
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()
    finally:
        pg_service.drop_database(name)


# --- seeded objects -------------------------------------------------------------------------


@dataclass
class World:
    """Real ids for route parameters, by parameter name."""

    ids: dict[str, int] = field(default_factory=dict)
    admin: object = None
    vendor: object = None


def seed(client, make_user, make_project, make_beneficiary, make_vendor, login, worker) -> World:
    from sqlalchemy import select

    from portal.accounts import sessions
    from portal.accounts.services import save_role
    from portal.beneficiaries import groups
    from portal.cards import services as cards
    from portal.chain.models import ChainTx
    from portal.imports.models import KOBO, ImportSource
    from portal.jobs import dispatch
    from portal.jobs.kinds import DIAGNOSTIC
    from portal.redemptions import services as redemptions
    from tests.support import chain

    admin = make_user("admin")
    other = make_user("viewer")
    role = save_role(None, "fuzzed", "a role the walk may change", {"beneficiary.read"})
    project = make_project(status="active", creator=admin)
    person = make_beneficiary(project=project)
    group = groups.create(project, "Ward 4", "Winter cash")
    groups.add_members(group, [person])
    vendor = make_vendor(project=project, status="approved")
    card, _ = cards.issue(person, issued_by=admin)
    db.session.commit()
    # A project on chain (the in-process EVM, through the real jobs): funding, a disbursement,
    # a transaction and a pending payment give the chain, disbursement and vendor pages and
    # their forms something to show and to act on.
    deployed = chain.deploy(worker, project)
    chain.fund(worker, project, "1000.00")
    disbursement = chain.allocate(worker, project, amount="20.00", beneficiary_ids=[person.id])
    redemption = redemptions.start(vendor, project, deployed, person, 100, "phone")
    tx_id = db.session.scalar(select(ChainTx.id).where(ChainTx.project_id == project.id))
    source = ImportSource(name="Survey", kind=KOBO, project_id=project.id)
    db.session.add(source)
    job = dispatch.enqueue(DIAGNOSTIC.name, {"fail_times": 0}, created_by_id=admin.id)
    db.session.commit()
    # The other user's session row: revoking it leaves the walking admin signed in.
    with client.application.test_request_context():
        row = sessions.start(other)
        db.session.commit()
    login(client, admin)
    response = client.post(
        "/imports/new",
        data={
            "file": (io.BytesIO(b"name,phone\nSita Rai,9841000001\n"), "list.csv"),
            "project_id": str(project.id),
            "group_id": "0",
            "source": "Ward 4 survey",
        },
        content_type="multipart/form-data",
    )
    batch = re.search(r"/imports/(\d+)", response.headers.get("Location", ""))
    ids = {
        "project_id": project.id,
        "beneficiary_id": person.id,
        "group_id": group.id,
        "vendor_id": vendor.id,
        "user_id": other.id,
        "role_id": role.id,
        "source_id": source.id,
        "job_id": job.id,
        "batch_id": int(batch.group(1)) if batch else 1,
        "row_id": row.id,
        "print_id": 1,
        "disbursement_id": disbursement.id,
        "redemption_id": redemption.id,
        "tx_id": tx_id,
        "card_id": card.id,
    }
    return World(ids=ids, admin=admin, vendor=vendor)


def vendor_session(app, client, vendor) -> None:
    """Sign ``client`` in as ``vendor`` (a session as the SMS sign-in leaves it)."""
    from flask import session

    from portal.vendor_portal import sessions as vendor_sessions

    with app.test_request_context():
        vendor_sessions.start(vendor)
        db.session.commit()
        signed_in = dict(session)
    with client.session_transaction() as browser:
        browser.clear()
        browser.update(signed_in)


# --- hostile values -------------------------------------------------------------------------

# Spellings that broke, or could break, a parser or the database; each is a class, and the
# strategies below generate more of each.
KNOWN_BAD = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x1b[31mred",
    "\x07",
    "\x7f",
    "\x85",
    "\x9b",
    "\ud800",
    "\ufffd",
    "\u202e",
    "²",
    "१२३",
    "٣",
    "①",
    "0",
    "-1",
    "1.5",
    "1e999999",
    "1e-1000000000",
    "NaN",
    "inf",
    "9" * 30,
    str(2**31),
    str(2**63),
    "9999-12-31",
    "0001-01-01",
    "2026-02-30",
    "true",
    "null",
    "[]",
    "{}",
    "%00",
    "../../etc/passwd",
    "//evil.example",
    "/\t/evil.example",
    "\r\nSet-Cookie: x=1",
    "=HYPERLINK(1)",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "x" * 5000,
]

# One of each class, tried on every field alone (generated values come on top).
SHARP = ["a\x00b", "\x1b[31m\x07", "²", "-1", "9" * 30, "9999-12-31", "1e999999", "x" * 5000]

UNICODE_DIGITS = "0123456789²³¹⁰₀٠١٢٣٤٥६७८९०१२३४५①⑩"

hostile_text = st.one_of(
    st.sampled_from(KNOWN_BAD),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=40),
    st.text(st.characters(max_codepoint=0x9F), max_size=20),
    st.text(UNICODE_DIGITS, min_size=1, max_size=12),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat),
    st.text(string.printable, min_size=200, max_size=3000),
)

# Names most list pages read; each route adds the names its module reads (``names_read``).
COMMON_NAMES = (
    "q",
    "page",
    "project",
    "status",
    "sort",
    "dir",
    "until",
    "since",
    "after",
    "before",
    "group",
    "kind",
    "state",
    "per_page",
    "queue",
    "action",
    "actor",
    "target",
    "job",
    "next",
    "id",
)

_READ = re.compile(
    r"""(?:request\.(?:args|form|values)\.get(?:list)?|_arg|_int)\(\s*["']([\w-]+)["']"""
)


def names_read(view) -> set[str]:
    """Parameter names the view's module reads by name (``request.args.get("x")`` and kin)."""
    try:
        source = inspect.getsource(inspect.getmodule(view))
    except (OSError, TypeError):
        return set()
    return set(_READ.findall(source))


def query_pairs(names) -> st.SearchStrategy[list[tuple[str, str]]]:
    """One to six name=value pairs (a name may repeat), values hostile, names sometimes too."""
    name = st.one_of(st.sampled_from(sorted(names)), st.sampled_from(["\x00", "a\x1b", "²"]))
    return st.lists(st.tuples(name, hostile_text), min_size=1, max_size=6)


def encode_query(pairs) -> str:
    """A raw query string; lone surrogates become the invalid UTF-8 bytes they would be."""

    def part(text: str) -> str:
        return quote(text.encode("utf-8", "surrogatepass"), safe="")

    return "&".join(f"{part(k)}={part(v)}" for k, v in pairs)


def form_value(text: str) -> str:
    """A form value the test client can send: lone surrogates cannot be encoded, so they go
    as U+FFFD, the character a decoder produces from bytes that are not UTF-8."""
    return text.encode("utf-8", "replace").decode("utf-8") if _has_surrogate(text) else text


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


# Path segments for string converters and ids outside the id range.
HOSTILE_IDS = [0, 2**31 - 1, 2**31, 2**63, 10**30]
HOSTILE_SEGMENTS = ["%00", "x%1B", "%C2%B2", "..%2F..%2Fetc", "%FF%FE", "a" * 300]


# Plausible values for fields a page leaves empty, so that one hostile field at a time gets
# past the required checks of the others and reaches the services.
PLAUSIBLE = {
    "name": "Fuzz",
    "title": "Fuzz round",
    "purpose": "Fuzz purpose",
    "source": "Fuzz source",
    "contact_name": "Fuzz Owner",
    "amount": "1.00",
    "phone": "9841000099",
    "email": "fuzz@example.org",
    "symbol": "FUZ",
    "currency": "NPR",
    "batch_size": "10",
    "refs": "",
    "code": "123456",
    "token": "AC1-FUZZ",
}


# --- forms found in pages -------------------------------------------------------------------


@dataclass
class FoundForm:
    action: str
    fields: dict[str, str]  # name -> a value the page offered (the baseline)
    files: set[str] = field(default_factory=set)


class _FormParser(HTMLParser):
    def __init__(self, page_path: str):
        super().__init__(convert_charrefs=True)
        self.page_path = page_path
        self.forms: list[FoundForm] = []
        self._form: FoundForm | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            if (a.get("method") or "get").lower() == "post":
                action = urlsplit(a.get("action") or self.page_path).path or self.page_path
                self._form = FoundForm(action=action, fields={})
            return
        if self._form is None:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            if kind == "file":
                self._form.files.add(name)
            elif kind in ("checkbox", "radio"):
                if "checked" in a or name not in self._form.fields:
                    self._form.fields[name] = a.get("value") or "on"
            elif kind not in ("submit", "button", "image", "reset"):
                self._form.fields[name] = a.get("value") or ""
        elif tag == "select" and name:
            self._select = name
            self._form.fields.setdefault(name, "")
        elif tag == "option" and self._select:
            value = a.get("value") or ""
            if "selected" in a or not self._form.fields.get(self._select):
                self._form.fields[self._select] = value
        elif tag == "textarea" and name:
            self._textarea = name
            self._form.fields[name] = ""

    def handle_data(self, data):
        if self._form is not None and self._textarea:
            self._form.fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def forms_in(page_path: str, html: str) -> list[FoundForm]:
    parser = _FormParser(page_path)
    parser.feed(html)
    return parser.forms


def form_field_names() -> set[str]:
    """Every field name of every form class: the fallback for a POST route no page links to."""
    from portal.forms import Form

    names: set[str] = set()
    stack = [Form]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        names.update(name for name, value in vars(cls).items() if hasattr(value, "field_class"))
    return names


# --- fixtures shared by the fuzz modules (each binds them: ``app = fuzzing.app``) ------------


@pytest.fixture
def app(pg_service, tmp_path):
    yield from postgres_app(pg_service, tmp_path)


@pytest.fixture
def world(app, client, make_user, make_project, make_beneficiary, make_vendor, login, worker):
    return seed(client, make_user, make_project, make_beneficiary, make_vendor, login, worker)


class ErrorLog(logging.Handler):
    """The last error the app logged: says why a request answered 500."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.last = ""

    def emit(self, record):
        if record.exc_info:
            self.last = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"[:300]
