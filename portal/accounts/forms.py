from __future__ import annotations

from flask_babel import lazy_gettext as _l
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

from portal.accounts.passwords import MAX_LENGTH, MIN_LENGTH
from portal.forms import Form

# The policy itself (common and guessable passwords) is checked where the password is hashed,
# so the command line and the seed obey it too; its refusal becomes this field's error.
POLICY = (
    f"{MIN_LENGTH} to {MAX_LENGTH} characters, not a common or easily guessed password: "
    "a phrase of several unrelated words works well."
)


class LoginForm(Form):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class PasswordChangeForm(Form):
    current = PasswordField("Current password", validators=[DataRequired()])
    new = PasswordField("New password", validators=[DataRequired()], description=POLICY)
    confirm = PasswordField(
        "Repeat the new password", validators=[DataRequired(), EqualTo("new", "The two differ.")]
    )


class UserCreateForm(Form):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=255)])
    role_id = SelectField("Role", coerce=int)
    password = PasswordField(
        "Initial password",
        validators=[DataRequired()],
        description=POLICY + " The user should change it.",
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
