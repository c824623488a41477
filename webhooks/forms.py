from django import forms

from codex.outbox.catalogue import CATALOGUE, SUBSCRIBABLE


class EndpointForm(forms.Form):
    url = forms.URLField(
        label="URL", max_length=500, help_text="An https:// address of your system, reachable from the internet."
    )
    description = forms.CharField(max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        label="Events",
        choices=[(name, f"{name} — {CATALOGUE[name].description}") for name in SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
    )
    enabled = forms.BooleanField(required=False, initial=True)
