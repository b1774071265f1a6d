"""Forms of the emailed-link pages: invitations, forgot and reset password, email change."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from portal.accounts.forms import DIFFER, POLICY, CheckboxesField
from portal.forms import Form


class InviteForm(Form):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=255)])
    role_id = SelectField(_l("Role"), coerce=int)
    projects = CheckboxesField(_l("Projects"), coerce=int)


class AcceptInvitationForm(Form):
    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=120)])
    password = PasswordField(
        _l("Choose a password"), validators=[DataRequired()], description=POLICY
    )
    confirm = PasswordField(
        _l("Repeat the password"), validators=[DataRequired(), EqualTo("password", DIFFER)]
    )


class ForgotPasswordForm(Form):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=255)])


class ResetPasswordForm(Form):
    password = PasswordField(_l("New password"), validators=[DataRequired()], description=POLICY)
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[DataRequired(), EqualTo("password", DIFFER)],
    )


class EmailChangeForm(Form):
    email = EmailField(_l("New email"), validators=[DataRequired(), Email(), Length(max=255)])
    password = PasswordField(_l("Current password"), validators=[DataRequired()])
