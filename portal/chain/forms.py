from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Regexp

from portal.chain.contracts import CAP_ACTIONS
from portal.forms import Form
from portal.ledger.labels import TABLES
from portal.money.forms import AmountField

CAP_LABELS = TABLES["cap"]


class DeployForm(Form):
    symbol = StringField(
        _l("Short code"),
        validators=[
            DataRequired(),
            Regexp(r"^[A-Za-z][A-Za-z0-9]{1,10}$", message=_l("2 to 11 letters or digits.")),
        ],
        description=_l("Names the voucher in payment records, e.g. FOOD26. No personal data."),
    )
    decimals = IntegerField(
        _l("Smallest unit"),
        default=2,
        validators=[NumberRange(min=0, max=6, message=_l("Between 0 and 6."))],
        description=_l("Digits after the point: 2 for cents (12.50); 0 for whole vouchers."),
    )


class FundForm(Form):
    amount = AmountField(_l("Amount to fund"))
    note = StringField(
        _l("Note"), validators=[Length(max=255)], description=_l("E.g. the grant it comes from.")
    )


class WalletForm(Form):
    address = StringField(
        _l("Wallet address"),
        validators=[Length(max=42)],
        description=_l(
            "The person's own wallet (0x…), for cash-transfer projects. Empty removes it."
        ),
        render_kw={"autocomplete": "off", "spellcheck": "false", "inputmode": "text"},
    )


class LedgerCheckForm(Form):
    """No fields: the button that starts a ledger check (CSRF only)."""


class PauseForm(Form):
    """Pause or resume: a reason (audited) and an explicit confirmation."""

    reason = StringField(
        _l("Reason"),
        validators=[DataRequired(_l("Say why.")), Length(max=200)],
        description=_l("Shown to staff on the project's pages and kept in the audit log."),
    )
    confirm = BooleanField(
        _l("I understand what this stops"), validators=[DataRequired(_l("Tick it."))]
    )


class CapsForm(Form):
    action = SelectField(_l("Action"), choices={a: a for a in CAP_ACTIONS})
    per_tx = AmountField(_l("Per transaction"))
    per_day = AmountField(_l("Per day"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Per request: the actions' names in the page's language.
        self.action.choices = {a: str(CAP_LABELS[a]) for a in CAP_ACTIONS}
