"""A campaign's progress on its page as it happens: the topic ``campaign`` joins the campaign's
room after checking that the user sees its project, and answers with the counts now."""

from __future__ import annotations

from portal import realtime
from portal.campaigns import sending, services
from portal.comms.delivery import campaign_room


@realtime.topic("campaign", "campaign.read")
def campaign_topic(user, params: dict):
    campaign = services.get_visible(user, realtime.id_param(params, "campaign_id"))
    return [campaign_room(campaign.id)], sending.snapshot(campaign)
