from __future__ import annotations

from wtforms import DateField, SelectField, StringField, TelField
from wtforms.validators import DataRequired, Length, Optional

from portal.beneficiaries.models import GENDERS, STATUSES
from portal.dateranges import BIRTH, InRange
from portal.forms import Form
from portal.i18n.locales import choices as language_choices

LANGUAGES = [
    ("en", "English"),
    ("ne", "Nepali"),
    ("hi", "Hindi"),
    ("bn", "Bengali"),
    ("sw", "Swahili"),
]


class BeneficiaryForm(Form):
    name = StringField("Full name", validators=[DataRequired(), Length(max=200)])
    phone = TelField(
        "Phone number",
        validators=[DataRequired(), Length(max=32)],
        description="Local numbers use the default country; or give +country code.",
    )
    national_id = StringField("National ID", validators=[Optional(), Length(max=40)])
    date_of_birth = DateField("Date of birth", validators=[Optional(), InRange(BIRTH)])
    location = StringField("Location (village, ward)", validators=[Optional(), Length(max=200)])
    gender = SelectField("Gender", choices=dict(GENDERS))
    language = SelectField("SMS language", choices=dict(LANGUAGES))
    status = SelectField("Status", choices={s: s.title() for s in STATUSES})
    consent = SelectField(
        "Consent to data use", choices={"yes": "Given", "no": "Not given"}, default="yes"
    )
    retention_until = DateField("Keep data until", validators=[Optional()])
    project_id = SelectField("Project", coerce=int, validators=[Optional()])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Each language by its own name (and the page's): "नेपाली (Nepali)", never "ne".
        self.language.choices = language_choices(code for code, _ in LANGUAGES)


class ProjectPickForm(Form):
    project_id = SelectField("Project", coerce=int)


class GroupPickForm(Form):
    group_id = SelectField("Group", coerce=int)


class GroupForm(Form):
    project_id = SelectField("Project", coerce=int)
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    purpose = StringField(
        "Purpose",
        validators=[DataRequired(), Length(max=255)],
        description="What the group is for, e.g. 'Winter cash, ward 4'.",
    )
