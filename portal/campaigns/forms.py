"""The campaign composer and its send form."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import DateTimeLocalField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.beneficiaries.forms import LANGUAGES
from portal.beneficiaries.models import GENDERS
from portal.campaigns.models import AUDIENCES
from portal.forms import Form
from portal.i18n import locales

CODES = tuple(code for code, _name in LANGUAGES)

# An SMS campaign text: up to 10 parts in GSM-7 (1,530 characters), 4 in Nepali script.
MAX_TEXT = 1530
AUDIENCE_LABELS = {
    "project": _l("Everyone in the project"),
    "group": _l("One group"),
    "filter": _l("People chosen by gender or language"),
}
CHANNEL_LABELS = {"sms": _l("SMS"), "whatsapp": _l("WhatsApp")}
CAMPAIGN_STATUS_LABELS = {
    "draft": _l("Draft"),
    "scheduled": _l("Scheduled"),
    "sending": _l("Sending"),
    "paused": _l("Paused"),
    "finished": _l("Finished"),
    "cancelled": _l("Cancelled"),
}


class CampaignForm(Form):
    name = StringField(
        _l("Name"), validators=[DataRequired(), Length(max=120)], description=_l("For staff only.")
    )
    project_id = SelectField(_l("Project"), coerce=int)
    channel = RadioField(_l("Send by"), default="sms", render_kw={"class": "choice-list"})
    template = StringField(
        _l("WhatsApp template"),
        validators=[Optional(), Length(max=80)],
        description=_l(
            "The name of a message template WhatsApp approved for this account; the text below "
            "fills its one blank."
        ),
    )
    audience = RadioField(
        _l("Who gets it"),
        choices={a: a for a in AUDIENCES},  # labels in the page's language: __init__
        default="project",
        render_kw={"class": "choice-list"},
    )
    group_id = SelectField(_l("Group"), coerce=int, validate_choice=False)
    gender = SelectField(
        _l("Gender"), choices={"": "Any", **{k: v for k, v in GENDERS.items() if k}}
    )
    language = SelectField(_l("Language"), choices={"": "Any language", **dict(LANGUAGES)})

    def __init__(self, *args, channels=("sms",), **kwargs):
        super().__init__(*args, **kwargs)
        # Choices are plain text (WTForms takes a dict of str): translated here, per request.
        self.channel.choices = {c: str(CHANNEL_LABELS[c]) for c in channels}
        self.audience.choices = {a: str(AUDIENCE_LABELS[a]) for a in AUDIENCES}
        self.gender.choices = {"": _("Any"), **{k: v for k, v in GENDERS.items() if k}}
        # Languages by their own name and the page's (Babel's data, in the page's language).
        self.language.choices = {"": _("Any language"), **dict(locales.choices(CODES))}
        for code in CODES:
            name = locales.language_name(code)
            getattr(self, f"text_{code}").label.text = (
                _("Text in %(language)s (required)", language=name)
                if code == "en"
                else _("Text in %(language)s", language=name)
            )


# One text box per language the portal sends in; English is required (it goes to everyone
# whose language has no text).
for _code, _label in LANGUAGES:
    setattr(
        CampaignForm,
        f"text_{_code}",
        TextAreaField(
            _label,  # set in the page's language by CampaignForm.__init__
            validators=[Optional(), Length(max=MAX_TEXT)],
            render_kw={"rows": 4, "lang": _code, "data-sms-text": _code},
        ),
    )


class SendForm(Form):
    when = RadioField(
        _l("When"),
        choices={"now": "Now", "later": "At a time"},  # in the page's language: __init__
        default="now",
        render_kw={"class": "choice-list"},
    )
    at = DateTimeLocalField(
        _l("Date and time (UTC)"), validators=[Optional()], format="%Y-%m-%dT%H:%M"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.when.choices = {"now": _("Now"), "later": _("At a time")}
