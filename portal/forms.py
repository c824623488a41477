from django import forms

from fees.models import BillingGroup

from .models import DocumentKind, PostAudience, Visibility


class ClientPasswordForm(forms.Form):
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


class InviteClientForm(forms.Form):
    email = forms.EmailField(required=False, help_text="Leave empty to use the client's own address.")
    household = forms.ModelChoiceField(
        queryset=BillingGroup.objects.none(),
        required=False,
        empty_label="Only this client's own portfolios",
        help_text="Bound to a household, the client sees every portfolio of the household.",
    )

    def __init__(self, *args, households, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["household"].queryset = households
        if not households.exists():
            del self.fields["household"]


class DocumentUploadForm(forms.Form):
    title = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=DocumentKind.choices)
    visibility = forms.ChoiceField(choices=Visibility.choices, initial=Visibility.SHARED)
    period_end = forms.DateField(required=False, help_text="As of (statements and reports), YYYY-MM-DD.")
    file = forms.FileField(help_text="PDF, CSV or PNG.")


class PostForm(forms.Form):
    title = forms.CharField(max_length=200)
    body = forms.CharField(widget=forms.Textarea, help_text="Markdown.")
    audience = forms.ChoiceField(choices=PostAudience.choices)
    audience_tag = forms.CharField(max_length=50, required=False, help_text="With “Clients with a tag”.")
    publish = forms.BooleanField(required=False, initial=True)


class ReportRunForm(forms.Form):
    quarter_end = forms.DateField(help_text="The last day of the quarter, YYYY-MM-DD.")


class DisclosuresForm(forms.Form):
    disclosures = forms.CharField(widget=forms.Textarea, required=False, max_length=10000)
