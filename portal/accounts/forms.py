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
POLICY = _l(
    "%(min)s to %(max)s characters, not a common or easily guessed password: "
    "a phrase of several unrelated words works well.",
    min=MIN_LENGTH,
    max=MAX_LENGTH,
)
INITIAL_POLICY = _l(
    "%(min)s to %(max)s characters, not a common or easily guessed password: "
    "a phrase of several unrelated words works well. The user should change it.",
    min=MIN_LENGTH,
    max=MAX_LENGTH,
)
DIFFER = _l("The two differ.")


class LoginForm(Form):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class PasswordChangeForm(Form):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    new = PasswordField(_l("New password"), validators=[DataRequired()], description=POLICY)
    confirm = PasswordField(
        _l("Repeat the new password"), validators=[DataRequired(), EqualTo("new", DIFFER)]
    )


class UserCreateForm(Form):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=255)])
    role_id = SelectField(_l("Role"), coerce=int)
    password = PasswordField(
        _l("Initial password"), validators=[DataRequired()], description=INITIAL_POLICY
    )


class UserEditForm(Form):
    role_id = SelectField(_l("Role"), coerce=int)
    active = BooleanField(_l("Active (may sign in)"))


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class RoleForm(Form):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=80)])
    description = TextAreaField(_l("Description"), validators=[Length(max=255)])
    permissions = CheckboxesField(_l("Permissions"))


class EmptyForm(Form):
    """For buttons that post: carries the CSRF token and nothing else."""
