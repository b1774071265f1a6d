"""Forms of the payouts pages (staff and the vendor's phone)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, PasswordField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.forms import Form
from portal.payouts.models import KIND_LABELS


class MethodForm(Form):
    kind = RadioField(_l("Paid by"), default="bank", render_kw={"class": "choice-list"})
    account_name = StringField(
        _l("Account holder's name"), validators=[DataRequired(), Length(max=100)]
    )
    account_number = StringField(
        _l("Account number or mobile-money number"),
        validators=[DataRequired(), Length(max=40)],
        description=_l(
            "A bank account number (or IBAN), or the phone number of the mobile-money account."
        ),
    )
    bank_code = StringField(
        _l("Bank code"),
        validators=[Optional(), Length(max=30)],
        description=_l("For a bank account: the bank's or branch's code. Empty for mobile money."),
    )
    make_default = BooleanField(_l("Pay to this one by default"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind.choices = list(KIND_LABELS.items())


class ReasonForm(Form):
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=200)])


class OverrideForm(ReasonForm):
    outcome = RadioField(_l("Mark as"), render_kw={"class": "choice-list"})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outcome.choices = [("paid", _("Paid")), ("failed", _("Failed"))]


class MatchForm(ReasonForm):
    reference = StringField(
        _l("Payout reference"),
        validators=[DataRequired(), Length(max=64)],
        description=_l("The reference of the payout this line pays."),
    )


class StatementForm(Form):
    project_id = SelectField(_l("Project"), coerce=int)
    file = FileField(
        _l("Statement (CSV or XLSX)"), validators=[FileRequired(_l("Choose the statement file."))]
    )


class MomoSettingsForm(Form):
    base_url = StringField(_l("API base URL"), validators=[Optional(), Length(max=300)])
    callback_base_url = StringField(
        _l("This portal's public URL (for callbacks)"), validators=[Optional(), Length(max=300)]
    )
    target_environment = StringField(
        _l("Target environment"), validators=[Optional(), Length(max=40)]
    )
    # Write-only: never rendered with their value; empty keeps what is stored.
    api_user = PasswordField(_l("API user"), validators=[Optional(), Length(max=200)])
    api_key = PasswordField(_l("API key"), validators=[Optional(), Length(max=200)])
    subscription_key = PasswordField(
        _l("Subscription key"), validators=[Optional(), Length(max=200)]
    )
    clear_keys = BooleanField(_l("Remove the stored keys"))
