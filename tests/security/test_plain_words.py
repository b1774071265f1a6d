"""Staff pages speak cash and voucher assistance, not blockchain.

Every staff GET page of the fuzz walk's world (a project on chain, funded, with a disbursement,
a payment, a vendor, an import, jobs) is rendered for a user who holds every permission except
``chain.details.read``: no page may show a chain word, an address or the token's symbol outside
an "On-chain details" disclosure (which such a user never gets). The same pages for a holder of
the permission do show the details, inside the disclosure.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from portal.accounts.permissions import PERMISSIONS
from portal.extensions import db
from tests.security import fuzzing

pytestmark = pytest.mark.integration

app = fuzzing.app
world = fuzzing.world

DETAILS = "chain.details.read"

CHAIN_WORDS = re.compile(
    r"\bERC-?20\b|\boperator\b|\bnonces?\b|\bgas\b|\bgwei\b|\bwei\b|\bmint(?:s|ed|ing)?\b"
    r"|\b0x[0-9a-fA-F]{6,}|\bdecimals\b|\bcontracts?\b|\bblock(?:chain)? ?(?:number|hash)?s?\b",
    re.IGNORECASE,
)


class _VisibleText(HTMLParser):
    """The text a reader sees (and ``title`` tooltips), less scripts and on-chain details."""

    SKIP = frozenset({"script", "style", "template"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden: list[str] = []  # the stack of tags whose content is not counted
        self.onchain: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("br", "img", "input", "meta", "link", "hr", "wbr", "source", "col"):
            if not self.hidden and tag == "input" and attrs.get("type") in ("submit", "button"):
                self.parts.append(attrs.get("value") or "")
            return
        onchain = tag == "details" and "onchain" in (attrs.get("class") or "").split()
        if self.hidden or tag in self.SKIP or onchain:
            self.hidden.append(tag)
            if onchain:
                self.onchain.append(tag)
            return
        for name in ("title", "placeholder", "aria-label"):
            if attrs.get(name):
                self.parts.append(attrs[name])

    def handle_endtag(self, tag):
        if self.hidden and self.hidden[-1] == tag:
            self.hidden.pop()

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def visible(html: str) -> tuple[str, int]:
    """(the visible text, the number of on-chain disclosures on the page)."""
    parser = _VisibleText()
    parser.feed(html)
    return " ".join(parser.parts), len(parser.onchain)


def _staff_pages(app, world):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        if getattr(view, "is_public", False) or getattr(view, "vendor_guarded", False):
            continue
        values = {arg: world.ids.get(arg, 1) for arg in rule.arguments}
        yield rule.endpoint, rule.build(values, append_unknown=False)[1]


def _symbol() -> str:
    from portal.chain.models import ProjectChain

    return db.session.scalar(select(ProjectChain.symbol).where(ProjectChain.symbol.is_not(None)))


def _user_without_details(make_user):
    from portal.accounts.services import save_role

    save_role(None, "everything but chain", "", set(PERMISSIONS) - {DETAILS})
    db.session.flush()
    return make_user("everything but chain")


def _render_all(client, app, world):
    pages = {}
    for endpoint, url in _staff_pages(app, world):
        response = client.get(url)
        if response.status_code == 200 and response.mimetype == "text/html":
            pages[endpoint] = (url, response.get_data(as_text=True))
    return pages


def test_no_chain_words_on_staff_pages_without_the_permission(app, client, world, make_user, login):
    user = _user_without_details(make_user)
    client = app.test_client()  # the world's client is signed in as its admin
    login(client, user)
    symbol = _symbol()
    assert symbol, "the world's project is on chain"
    # The symbol in its own case: "AID" is a token, "Aid" is the portal's name.
    words = re.compile(rf"{CHAIN_WORDS.pattern}|(?-i:\b{re.escape(symbol)}\b)", re.IGNORECASE)
    pages = _render_all(client, app, world)
    assert len(pages) >= 40, sorted(pages)
    found = []
    for endpoint, (url, html) in sorted(pages.items()):
        text, disclosures = visible(html)
        assert disclosures == 0, f"{url} shows on-chain details to a user without {DETAILS}"
        hits = sorted({m.group(0) for m in words.finditer(text)})
        if hits:
            found.append(f"{endpoint} {url}: {hits}")
    assert not found, "\n".join(found)
    # The Transactions page and a transaction's page are on-chain details themselves.
    project_id, tx_id = world.ids["project_id"], world.ids["tx_id"]
    assert client.get(f"/projects/{project_id}/transactions").status_code == 403
    assert client.get(f"/projects/{project_id}/transactions/{tx_id}").status_code == 403


def test_holders_of_the_permission_see_the_details_in_a_disclosure(app, client, world):
    """The walk's admin holds ``chain.details.read`` (seeded): addresses and the symbol are
    there, inside "On-chain details"."""
    symbol = _symbol()
    pages = _render_all(client, app, world)
    project_id = world.ids["project_id"]
    assert f"/projects/{project_id}/transactions" in {url for url, _ in pages.values()}
    with_details = {}
    for endpoint, (_url, html) in pages.items():
        text, disclosures = visible(html)
        if disclosures:
            with_details[endpoint] = html
            assert not re.search(r"\b0x[0-9a-fA-F]{6,}", text), endpoint
    for endpoint in ("chain.project_chain", "disbursements.show", "vendors.show"):
        assert endpoint in with_details, sorted(with_details)
    chain_page = with_details["chain.project_chain"]
    assert "On-chain details" in chain_page
    assert re.search(r"0x[0-9a-fA-F]{40}", chain_page)
    assert symbol in chain_page
