"""Forms the console's actions share."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))


class OptionalReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


def to_minor_units(amount: Decimal, precision: int) -> int:
    """100.50 at precision 2 -> 10050; refuses amounts finer than the asset's minor unit."""
    try:
        minor = amount.scaleb(precision)
    except InvalidOperation:
        raise forms.ValidationError("Enter a valid amount.") from None
    if minor != minor.to_integral_value():
        raise forms.ValidationError(f"At most {precision} decimal places for this asset.")
    return int(minor)
