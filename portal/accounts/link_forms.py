"""Forms of the emailed-link pages: invitations, forgot and reset password, email change."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from portal.accounts.forms import POLICY, CheckboxesField
from portal.forms import Form


class InviteForm(Form):
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=255)])
    role_id = SelectField("Role", coerce=int)
    projects = CheckboxesField("Projects", coerce=int)


class AcceptInvitationForm(Form):
    name = StringField("Your name", validators=[DataRequired(), Length(max=120)])
    password = PasswordField("Choose a password", validators=[DataRequired()], description=POLICY)
    confirm = PasswordField(
        "Repeat the password", validators=[DataRequired(), EqualTo("password", "The two differ.")]
    )


class ForgotPasswordForm(Form):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=255)])


class ResetPasswordForm(Form):
    password = PasswordField(_l("New password"), validators=[DataRequired()], description=POLICY)
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[DataRequired(), EqualTo("password", _l("The two differ."))],
    )


class EmailChangeForm(Form):
    email = EmailField("New email", validators=[DataRequired(), Email(), Length(max=255)])
    password = PasswordField("Current password", validators=[DataRequired()])
