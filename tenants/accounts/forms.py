from typing import ClassVar

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from codex.formatting import DATE_FORMAT_CHOICES, LOCALE_CHOICES
from codex.tables import TableFilterForm

from .models import STAFF_ROLE_CHOICES, Role


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(
        label="E-mail", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )

    def clean(self):
        try:
            return super().clean()
        except forms.ValidationError:
            wait = getattr(self.request, "codex_login_wait", None)
            if wait:
                raise forms.ValidationError(
                    f"Too many failed sign-ins. Wait {wait} seconds and try again, or reset your password.",
                    code="throttled",
                ) from None
            raise


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail")
    role = forms.ChoiceField(choices=STAFF_ROLE_CHOICES, initial=Role.ADVISOR)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=STAFF_ROLE_CHOICES)


class AcceptInvitationForm(forms.Form):
    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150, required=False)
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), min_length=8, max_length=128
    )
    password_again = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), label="Password again"
    )

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


class TwoFactorCodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "inputmode": "text"}),
    )


class ProfileForm(forms.Form):
    """A person's own name (shown instead of their e-mail in owner columns) and display preferences."""

    first_name = forms.CharField(max_length=150, required=False, label="First name")
    last_name = forms.CharField(max_length=150, required=False, label="Last name")
    locale = forms.ChoiceField(
        choices=LOCALE_CHOICES,
        required=False,
        label="Language and number format",
        help_text="How amounts, percentages and dates are written for you: 1,234.50 or 1.234,50.",
    )
    date_format = forms.ChoiceField(choices=DATE_FORMAT_CHOICES, required=False, label="Dates")


class AuditFilterForm(TableFilterForm):
    """Filters of the firm's audit log page, from the query string."""

    action = forms.CharField(
        label="Action starts with",
        max_length=64,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "auth., support., team."}),
    )
    actor = forms.CharField(label="Who", max_length=254, required=False)
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    lookups: ClassVar = {
        "action": "action__startswith",
        "actor": "actor__icontains",
        "date_from": "created_at__date__gte",
        "date_to": "created_at__date__lte",
    }

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data
