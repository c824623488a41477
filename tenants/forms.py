from django import forms
from django.conf import settings

from .models import ApiScope


class SignupForm(forms.Form):
    name = forms.CharField(label="Firm name", max_length=200)
    slug = forms.CharField(
        label="Address", max_length=50, help_text="Lower-case letters, digits and hyphens: becomes <address>.codex"
    )
    owner_email = forms.EmailField(label="Your e-mail")
    owner_password = forms.CharField(
        label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), max_length=128
    )

    def __init__(self, *args, **kwargs):

        super().__init__(*args, **kwargs)
        text = f"Lower-case letters, digits and hyphens: your address becomes <address>.{settings.CODEX_BASE_DOMAIN}"
        self.fields["slug"].help_text = text


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    scope = forms.ChoiceField(choices=ApiScope.choices, initial=ApiScope.READ)
    expires_at = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), help_text="Optional"
    )


class FindFirmForm(forms.Form):
    email = forms.EmailField(
        label="Your work e-mail",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        help_text="We e-mail you the sign-in address of every firm you belong to.",
    )
