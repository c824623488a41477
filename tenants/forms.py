from typing import cast

from django import forms
from django.conf import settings

from .models import ApiScope
from .services import tenant_provision_errors


class SignupForm(forms.Form):
    """Sign-up on the public site. ``plans`` are the (code, label) choices the site offers; every
    field is checked in one go (``tenant_provision_errors``), so one submission shows every problem
    next to its field and keeps what was typed (the password too: the page is never cached)."""

    name = forms.CharField(label="Firm name", max_length=200)
    slug = forms.CharField(
        label="Address", max_length=50, help_text="Lower-case letters, digits and hyphens: becomes <address>.codex"
    )
    owner_email = forms.EmailField(label="Your e-mail")
    owner_password = forms.CharField(
        label="Password",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=True),
        max_length=128,
    )
    plan = forms.ChoiceField(
        label="Plan",
        required=False,  # left out: the default sign-up plan
        help_text="Free during the trial; change it at any time.",
        error_messages={"invalid_choice": "Choose one of the plans on offer."},
    )

    def __init__(self, *args, plans: list[tuple[str, str]], **kwargs):

        super().__init__(*args, **kwargs)
        text = f"Lower-case letters, digits and hyphens: your address becomes <address>.{settings.CODEX_BASE_DOMAIN}"
        self.fields["slug"].help_text = text
        cast(forms.ChoiceField, self.fields["plan"]).choices = plans
        self.fields["slug"].widget.attrs.update({"autocapitalize": "none", "spellcheck": "false"})
        self.fields["owner_email"].widget.attrs.update({"autocomplete": "email"})
        self.fields["name"].widget.attrs.update({"autocomplete": "organization"})

    def clean_plan(self) -> str:
        return self.cleaned_data.get("plan") or settings.CODEX_SIGNUP_PLAN

    def clean(self):
        cleaned = super().clean()
        # The fields Django already refused keep their own message; the others are checked by the
        # same rules provisioning applies, all at once.
        errors = tenant_provision_errors(
            name=self.data.get("name", ""),
            slug=self.data.get("slug", ""),
            owner_email=self.data.get("owner_email", ""),
            owner_password=self.data.get("owner_password", ""),
            plan_code=cleaned.get("plan", settings.CODEX_SIGNUP_PLAN),
        )
        for field, message in errors.items():
            if field not in self.errors:
                self.add_error(field if field in self.fields else None, message)
        return cleaned


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
