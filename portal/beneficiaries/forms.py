from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import DateField, SelectField, StringField, TelField
from wtforms.validators import DataRequired, Length, Optional

from portal.beneficiaries.models import GENDER_LABELS, STATUS_LABELS
from portal.dateranges import BIRTH, InRange
from portal.forms import Form
from portal.i18n.locales import choices as language_choices

# English names: an imported file may name a language so (imports.validation).
LANGUAGES = [
    ("en", "English"),
    ("ne", "Nepali"),
    ("hi", "Hindi"),
    ("bn", "Bengali"),
    ("sw", "Swahili"),
]


class BeneficiaryForm(Form):
    name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=200)])
    phone = TelField(
        _l("Phone number"),
        validators=[DataRequired(), Length(max=32)],
        description=_l("Local numbers use the default country; or give +country code."),
    )
    national_id = StringField(_l("National ID"), validators=[Optional(), Length(max=40)])
    date_of_birth = DateField(_l("Date of birth"), validators=[Optional(), InRange(BIRTH)])
    location = StringField(_l("Location (village, ward)"), validators=[Optional(), Length(max=200)])
    gender = SelectField(_l("Gender"), choices=[])
    language = SelectField(_l("SMS language"), choices=dict(LANGUAGES))
    status = SelectField(_l("Status"), choices=[])
    consent = SelectField(
        _l("Consent to data use"),
        choices=[],
        default="yes",
    )
    retention_until = DateField(_l("Keep data until"), validators=[Optional()])
    project_id = SelectField(_l("Project"), coerce=int, validators=[Optional()])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Each language by its own name (and the page's): "नेपाली (Nepali)", never "ne".
        self.language.choices = language_choices(code for code, _ in LANGUAGES)
        # Words in the page's language, so made per request.
        self.gender.choices = labelled(GENDER_LABELS)
        self.status.choices = labelled(STATUS_LABELS)
        self.consent.choices = [("yes", _("Given")), ("no", _("Not given"))]


def labelled(labels: dict) -> list[tuple[str, str]]:
    """``(code, label)`` pairs for a select field, each label in the page's language."""
    return [(code, str(label)) for code, label in labels.items()]


class ProjectPickForm(Form):
    project_id = SelectField(_l("Project"), coerce=int)


class GroupPickForm(Form):
    group_id = SelectField(_l("Group"), coerce=int)


class GroupForm(Form):
    project_id = SelectField(_l("Project"), coerce=int)
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    purpose = StringField(
        _l("Purpose"),
        validators=[DataRequired(), Length(max=255)],
        description=_l("What the group is for, e.g. 'Winter cash, ward 4'."),
    )
