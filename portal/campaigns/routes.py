"""Campaign pages: the list, the composer with its preview per language, a campaign's page
with live progress, and the buttons that send, pause, resume and cancel."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.accounts.forms import EmptyForm
from portal.accounts.guards import permission_required
from portal.beneficiaries.models import GENDERS, BeneficiaryGroup
from portal.campaigns import live as _live  # noqa: F401 (its topic)
from portal.campaigns import sending, services
from portal.campaigns.forms import (
    AUDIENCE_LABELS,
    CAMPAIGN_STATUS_LABELS,
    CHANNEL_LABELS,
    CODES,
    CampaignForm,
    SendForm,
)
from portal.campaigns.models import Campaign
from portal.comms import whatsapp
from portal.comms.models import STATUSES
from portal.errors import DomainError, ValidationFailed
from portal.extensions import db
from portal.i18n import locales
from portal.messages import preview as sms_preview
from portal.messages import segments
from portal.projects import services as projects
from portal.projects.models import Project
from portal.transactions import attempt

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")
GENDER_LABELS = {k: v for k, v in GENDERS.items() if k}


def _channels() -> tuple[str, ...]:
    return ("sms", "whatsapp") if whatsapp.enabled(current_app.config) else ("sms",)


@bp.get("")
@permission_required("campaign.read")
def index():
    campaigns = list(
        db.session.scalars(services.visible(current_user).order_by(Campaign.id.desc()).limit(200))
    )
    names = dict(db.session.execute(select(Project.id, Project.name)).all())
    return render_template(
        "campaigns/index.html",
        campaigns=campaigns,
        counts={c.id: sending.counts(c.id) for c in campaigns},
        project_names=names,
        channels=CHANNEL_LABELS,
        status_labels=CAMPAIGN_STATUS_LABELS,
    )


def _form() -> CampaignForm:
    form = CampaignForm(channels=_channels())
    open_projects = projects.open_projects(current_user)
    form.project_id.choices = {p.id: p.name for p in open_projects}
    ids = [p.id for p in open_projects]
    groups = db.session.scalars(
        select(BeneficiaryGroup)
        .where(BeneficiaryGroup.project_id.in_(ids))
        .order_by(BeneficiaryGroup.name)
    )
    names = {p.id: p.name for p in open_projects}
    form.group_id.choices = [(0, "—")] + [
        (g.id, _("%(group)s (%(project)s)", group=g.name, project=names[g.project_id]))
        for g in groups
    ]
    return form


def _texts(form: CampaignForm) -> dict[str, str]:
    return {code: getattr(form, f"text_{code}").data or "" for code in CODES}


def previews(texts: dict[str, str], by_language: dict[str, int] | None = None) -> dict:
    """Each language's text with its SMS length, the people who get it and what they cost:
    what staff check before sending. ``by_language``: the audience's people by their own
    language (``sending.audience_counts``); those whose language has no text get the English.

    Segments are counted by the one module the message templates' preview uses
    (``portal.messages.segments``) and priced at ``SMS_PRICE_PER_SEGMENT``
    (``portal.messages.preview``).
    """
    people: dict[str, int] = {}
    for language, count in (by_language or {}).items():
        gets = language if texts.get(language) else "en"
        people[gets] = people.get(gets, 0) + count
    items = []
    for code, body in texts.items():
        if not body:
            continue
        length = segments.measure(body)
        count = people.get(code, 0)
        items.append(
            {
                "language": code,
                "name": locales.language_name(code),
                "body": body,
                "length": length,
                "people": count,
                "segments": length.segments * count,
                "cost_each": sms_preview.cost_text(length.segments),
                "cost": sms_preview.cost_text(length.segments * count),
            }
        )
    total = sum(item["segments"] for item in items)
    return {
        "items": items,
        "people": sum(item["people"] for item in items),
        "segments": total,
        "cost": sms_preview.cost_text(total),
    }


def _draft_reach(form: CampaignForm) -> dict[str, int]:
    """Who the composer's choices would reach now, by language (nothing is saved)."""
    if form.project_id.data not in dict(form.project_id.choices or {}):
        return {}
    draft = Campaign(
        project_id=form.project_id.data,
        audience=form.audience.data,
        group_id=form.group_id.data or None,
        filters={"gender": form.gender.data or "", "language": form.language.data or ""},
    )
    return sending.audience_counts(draft)["by_language"]


@bp.route("/new", methods=["GET", "POST"])
@permission_required("campaign.read", "campaign.manage")
def new():
    form = _form()
    preview = None
    if form.validate_on_submit():
        texts = {code: body.strip() for code, body in _texts(form).items() if body.strip()}
        if request.form.get("action") == "preview":
            preview = previews(texts, _draft_reach(form))
        else:
            project = projects.get_visible(current_user, form.project_id.data)
            try:
                with attempt():
                    campaign = services.create(
                        project,
                        {
                            "name": form.name.data,
                            "channel": form.channel.data,
                            "audience": form.audience.data,
                            "group_id": form.group_id.data,
                            "gender": form.gender.data,
                            "language": form.language.data,
                            "template": form.template.data,
                        },
                        texts,
                        current_user.id,
                    )
            except ValidationFailed as exc:
                for name, message in exc.fields.items():
                    getattr(form, name).errors.append(message)
            except DomainError as exc:
                form.name.errors.append(str(exc))
            else:
                flash(_("Campaign saved. Check the preview, then send it."), "success")
                return redirect(url_for("campaigns.show", campaign_id=campaign.id))
    status = 400 if form.errors else 200
    return render_template("campaigns/new.html", form=form, preview=preview), status


def _show(campaign: Campaign, send_form: SendForm | None = None, status: int = 200):
    texts = {t.language: t.body for t in campaign.texts}
    reach = sending.audience_counts(campaign)
    return render_template(
        "campaigns/show.html",
        campaign=campaign,
        project=db.session.get(Project, campaign.project_id),
        group=db.session.get(BeneficiaryGroup, campaign.group_id) if campaign.group_id else None,
        preview=previews(texts, reach["by_language"]),
        reach=reach,
        snapshot=sending.snapshot(campaign),
        statuses=STATUSES,
        send_form=send_form or SendForm(),
        button_form=EmptyForm(),
        audience_labels=AUDIENCE_LABELS,
        channels=CHANNEL_LABELS,
        status_labels=CAMPAIGN_STATUS_LABELS,
        gender_labels=GENDER_LABELS,
    ), status


@bp.get("/<int:campaign_id>")
@permission_required("campaign.read")
def show(campaign_id: int):
    return _show(services.get_visible(current_user, campaign_id))


@bp.post("/<int:campaign_id>/send")
@permission_required("campaign.read", "campaign.manage")
def send(campaign_id: int):
    campaign = services.get_visible(current_user, campaign_id)
    form = SendForm()
    if form.validate_on_submit():
        when = None
        if form.when.data == "later":
            if form.at.data is None:
                form.at.errors.append(_("Give the date and time to send it at."))
                return _show(campaign, form, 400)
            when = form.at.data
        try:
            with attempt():
                services.send(campaign, when, current_user.id)
        except DomainError as exc:
            form.when.errors.append(str(exc))
        else:
            flash(
                _("Sending started.")
                if campaign.scheduled_at is None
                else _("Campaign scheduled."),
                "success",
            )
            return redirect(url_for("campaigns.show", campaign_id=campaign.id))
    return _show(campaign, form, 400)


def _button(campaign_id: int, action, done: str):
    campaign = services.get_visible(current_user, campaign_id)
    if not EmptyForm().validate_on_submit():
        flash(_("The form expired. Please try again."), "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign.id))
    try:
        with attempt():
            action(campaign)
    except DomainError as exc:
        flash(str(exc), "error")
    else:
        flash(done, "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


@bp.post("/<int:campaign_id>/pause")
@permission_required("campaign.read", "campaign.manage")
def pause(campaign_id: int):
    return _button(campaign_id, services.pause, _("Paused: no more messages go until you resume."))


@bp.post("/<int:campaign_id>/resume")
@permission_required("campaign.read", "campaign.manage")
def resume(campaign_id: int):
    return _button(campaign_id, services.resume, _("Resumed."))


@bp.post("/<int:campaign_id>/cancel")
@permission_required("campaign.read", "campaign.manage")
def cancel(campaign_id: int):
    return _button(
        campaign_id, services.cancel, _("Cancelled: messages not sent yet will not be sent.")
    )
