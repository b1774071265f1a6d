"""The campaign composer and its send form."""

from __future__ import annotations

from wtforms import DateTimeLocalField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.beneficiaries.forms import LANGUAGES
from portal.beneficiaries.models import GENDERS
from portal.campaigns.models import AUDIENCES
from portal.forms import Form

# An SMS campaign text: up to 10 parts in GSM-7 (1,530 characters), 4 in Nepali script.
MAX_TEXT = 1530
AUDIENCE_LABELS = {
    "project": "Everyone in the project",
    "group": "One group",
    "filter": "People chosen by gender or language",
}
CHANNEL_LABELS = {"sms": "SMS", "whatsapp": "WhatsApp"}


class CampaignForm(Form):
    name = StringField(
        "Name", validators=[DataRequired(), Length(max=120)], description="For staff only."
    )
    project_id = SelectField("Project", coerce=int)
    channel = RadioField("Send by", default="sms", render_kw={"class": "choice-list"})
    template = StringField(
        "WhatsApp template",
        validators=[Optional(), Length(max=80)],
        description="The name of a message template WhatsApp approved for this account; the "
        "text below fills its one blank.",
    )
    audience = RadioField(
        "Who gets it",
        choices={a: AUDIENCE_LABELS[a] for a in AUDIENCES},
        default="project",
        render_kw={"class": "choice-list"},
    )
    group_id = SelectField("Group", coerce=int, validate_choice=False)
    gender = SelectField("Gender", choices={"": "Any", **{k: v for k, v in GENDERS.items() if k}})
    language = SelectField("Language", choices={"": "Any language", **dict(LANGUAGES)})

    def __init__(self, *args, channels=("sms",), **kwargs):
        super().__init__(*args, **kwargs)
        self.channel.choices = {c: CHANNEL_LABELS[c] for c in channels}


# One text box per language the portal sends in; English is required (it goes to everyone
# whose language has no text).
for _code, _label in LANGUAGES:
    setattr(
        CampaignForm,
        f"text_{_code}",
        TextAreaField(
            f"Text in {_label}" + (" (required)" if _code == "en" else ""),
            validators=[Optional(), Length(max=MAX_TEXT)],
            render_kw={"rows": 4, "lang": _code, "data-sms-text": _code},
        ),
    )


class SendForm(Form):
    when = RadioField(
        "When",
        choices={"now": "Now", "later": "At a time"},
        default="now",
        render_kw={"class": "choice-list"},
    )
    at = DateTimeLocalField("Date and time (UTC)", validators=[Optional()], format="%Y-%m-%dT%H:%M")
