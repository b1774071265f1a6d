from __future__ import annotations

from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Regexp

from portal.chain.contracts import CAP_ACTIONS
from portal.forms import Form
from portal.money.forms import AmountField


class DeployForm(Form):
    symbol = StringField(
        "Short code",
        validators=[
            DataRequired(),
            Regexp(r"^[A-Za-z][A-Za-z0-9]{1,10}$", message="2 to 11 letters or digits."),
        ],
        description="Names the voucher in payment records, e.g. FOOD26. No personal data.",
    )
    decimals = IntegerField(
        "Smallest unit",
        default=2,
        validators=[NumberRange(min=0, max=6, message="Between 0 and 6.")],
        description="Digits after the point: 2 for cents (12.50); 0 for whole vouchers.",
    )


class FundForm(Form):
    amount = AmountField("Amount to fund")
    note = StringField(
        "Note", validators=[Length(max=255)], description="E.g. the grant it comes from."
    )


class WalletForm(Form):
    address = StringField(
        "Wallet address",
        validators=[Length(max=42)],
        description="The person's own wallet (0x…), for cash-transfer projects. Empty removes it.",
        render_kw={"autocomplete": "off", "spellcheck": "false", "inputmode": "text"},
    )


class LedgerCheckForm(Form):
    """No fields: the button that starts a ledger check (CSRF only)."""


class PauseForm(Form):
    """Pause or resume: a reason (audited) and an explicit confirmation."""

    reason = StringField(
        "Reason",
        validators=[DataRequired("Say why."), Length(max=200)],
        description="Shown to staff on the project's pages and kept in the audit log.",
    )
    confirm = BooleanField("I understand what this stops", validators=[DataRequired("Tick it.")])


class CapsForm(Form):
    action = SelectField("Action", choices={a: a.capitalize() for a in CAP_ACTIONS})
    per_tx = AmountField("Per transaction")
    per_day = AmountField("Per day")
