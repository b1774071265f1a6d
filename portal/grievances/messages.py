"""What the person who raised a grievance is told by SMS: its reference when it is opened, and
each change of status. English and Nepali; other languages get English until the message
templates per language cover these too."""

from __future__ import annotations

from portal.grievances.models import ASSIGNED, CLOSED, IN_PROGRESS, RESOLVED

_TEXT = {
    "en": {
        "opened": "We have received your message. Your reference is {ref}. "
        "Our team will look into it.",
        ASSIGNED: "Your message {ref} has been given to a member of our team.",
        IN_PROGRESS: "We are working on your message {ref}.",
        RESOLVED: "Your message {ref} has been resolved. Reply if the problem is not fixed.",
        CLOSED: "Your message {ref} is now closed. Thank you.",
    },
    "ne": {
        "opened": "हामीले तपाईंको सन्देश पायौं। तपाईंको सन्दर्भ नम्बर {ref} हो। हाम्रो टोलीले यसलाई हेर्नेछ।",
        ASSIGNED: "तपाईंको सन्देश {ref} हाम्रो टोलीका एक सदस्यलाई दिइएको छ।",
        IN_PROGRESS: "हामी तपाईंको सन्देश {ref} मा काम गर्दैछौं।",
        RESOLVED: "तपाईंको सन्देश {ref} समाधान भयो। समस्या बाँकी भए जवाफ दिनुहोस्।",
        CLOSED: "तपाईंको सन्देश {ref} बन्द गरिएको छ। धन्यवाद।",
    },
}


def text(event: str, ref: str, language: str) -> str | None:
    """The SMS for ``event`` ("opened" or a status), or None when that status is not told."""
    words = _TEXT.get(language, _TEXT["en"])
    template = words.get(event)
    return None if template is None else template.format(ref=ref)
