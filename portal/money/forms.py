"""The form field for every amount a person types: parsed by ``portal.money.amounts``."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import StringField
from wtforms.validators import StopValidation

from portal.money import amounts

NOT_DEPLOYED = _l("This project cannot take amounts yet: its token is not deployed.")


class AmountField(StringField):
    """Text in, base units out (``data``), for the token's ``decimals`` set by the view.

    The view calls ``field.use(pc.decimals)`` once it knows the project;
    until then the field refuses, so no amount is read with the wrong scale. The typed text is
    kept for re-rendering the form with its error.
    """

    def __init__(self, label=None, validators=None, *, allow_zero: bool = False, **kwargs):
        render_kw = {
            "inputmode": "decimal",
            "autocomplete": "off",
            "spellcheck": "false",
            "maxlength": str(amounts.MAX_TEXT),
            **(kwargs.pop("render_kw", None) or {}),
        }
        super().__init__(label, validators, render_kw=render_kw, **kwargs)
        self.allow_zero = allow_zero
        self.decimals: int | None = None
        self.unknown = NOT_DEPLOYED
        self.text = ""

    def process_formdata(self, valuelist):
        self.text = valuelist[0] if valuelist and isinstance(valuelist[0], str) else ""
        self.data = None

    def use(self, decimals: int | None, unknown: str | None = None) -> None:
        """Read amounts with this token's decimals; None refuses with ``unknown`` (or a note
        that the project has no token yet)."""
        self.decimals = decimals
        self.unknown = unknown or NOT_DEPLOYED

    def pre_validate(self, form):
        if self.decimals is None:
            self.data = None
            raise StopValidation(self.unknown)
        try:
            self.data = amounts.parse(self.text, self.decimals, allow_zero=self.allow_zero)
        except amounts.AmountError as exc:
            self.data = None
            raise StopValidation(exc.message) from None

    def _value(self):
        if self.text:
            return self.text
        if isinstance(self.data, int) and self.decimals is not None:
            return amounts.format(self.data, self.decimals)
        return ""
