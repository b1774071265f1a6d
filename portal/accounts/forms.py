from __future__ import annotations

from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, EqualTo, Length
from wtforms.widgets import CheckboxInput, ListWidget

from portal.accounts.services import MIN_PASSWORD
from portal.forms import Form


class LoginForm(Form):
    email = EmailField("Email", validators=[DataRequired(), Email()])
    password = PasswordField("Password", validators=[DataRequired()])


class PasswordChangeForm(Form):
    current = PasswordField("Current password", validators=[DataRequired()])
    new = PasswordField("New password", validators=[DataRequired(), Length(min=MIN_PASSWORD)])
    confirm = PasswordField(
        "Repeat the new password", validators=[DataRequired(), EqualTo("new", "The two differ.")]
    )


class UserCreateForm(Form):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=255)])
    role_id = SelectField("Role", coerce=int)
    password = PasswordField(
        "Initial password",
        validators=[DataRequired(), Length(min=MIN_PASSWORD)],
        description=f"At least {MIN_PASSWORD} characters; the user should change it.",
    )


class UserEditForm(Form):
    role_id = SelectField("Role", coerce=int)
    active = BooleanField("Active (may sign in)")


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class RoleForm(Form):
    name = StringField("Name", validators=[DataRequired(), Length(max=80)])
    description = TextAreaField("Description", validators=[Length(max=255)])
    permissions = CheckboxesField("Permissions")


class EmptyForm(Form):
    """For buttons that post: carries the CSRF token and nothing else."""
