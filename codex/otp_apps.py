"""django-otp's plugins under readable names in the operators' console.

The plugins' own configs leave the section names to their labels ("OTP_TOTP", "OTP_STATIC"). These
subclasses keep each plugin's name and label (so migrations, tables and django-tenants' routing,
which matches the app's ``name``, are unchanged) and give only the verbose name.
"""

from django_otp.plugins.otp_static.apps import DefaultConfig as StaticDefaultConfig
from django_otp.plugins.otp_totp.apps import DefaultConfig as TOTPDefaultConfig


class TOTPConfig(TOTPDefaultConfig):
    label = "otp_totp"
    verbose_name = "Two-factor: authenticator apps"


class StaticConfig(StaticDefaultConfig):
    label = "otp_static"
    verbose_name = "Two-factor: recovery codes"
