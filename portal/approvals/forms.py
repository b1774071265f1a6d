from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length

from portal.approvals.models import APPROVE, REJECT
from portal.forms import Form
from portal.money.forms import AmountField


class DecisionForm(Form):
    decision = StringField(
        _l("Decision"),
        validators=[DataRequired(), AnyOf((APPROVE, REJECT), message=_l("Approve or reject."))],
    )
    reason = TextAreaField(
        _l("Reason"),
        validators=[Length(max=500)],
        description=_l("Required to reject; the requester reads it. Optional to approve."),
    )


class ThresholdAmountField(AmountField):
    """An amount, or nothing (no second approver ever)."""

    def pre_validate(self, form):
        if not self.text.strip() and self.decimals is not None:
            self.data = None
            return
        super().pre_validate(form)


class ThresholdForm(Form):
    second_above = ThresholdAmountField(
        _l("Second approver needed above"),
        description=_l(
            "Funding, disbursements and settlements larger than this need two approvers "
            "besides the person who asked. Empty: one approver is always enough."
        ),
    )
