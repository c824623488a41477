"""Plumbing hooks: keep the host -> firm cache honest, and audit sign-ins and failures."""

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from codex.security.net import client_ip

from .models import ApiKey, Domain, Tenant
from .selectors import tenant_cache_invalidate
from .services import audit_record


@receiver(post_save, sender=Tenant)
@receiver(post_delete, sender=Tenant)
def _tenant_changed(sender, instance: Tenant, **kwargs) -> None:
    hosts = list(Domain.objects.filter(tenant_id=instance.pk).values_list("domain", flat=True))
    # Cached API keys carry a copy of their firm (its status decides 403 tenant_suspended).
    prefixes = list(ApiKey.objects.filter(tenant_id=instance.pk).values_list("prefix", flat=True))
    tenant_cache_invalidate(hosts=hosts, api_key_prefixes=prefixes)


@receiver(post_save, sender=ApiKey)
@receiver(post_delete, sender=ApiKey)
def _api_key_changed(sender, instance: ApiKey, **kwargs) -> None:
    tenant_cache_invalidate(hosts=[], api_key_prefixes=[instance.prefix])


@receiver(pre_save, sender=Domain)
def _domain_renamed(sender, instance: Domain, **kwargs) -> None:
    if instance.pk:
        old = Domain.objects.filter(pk=instance.pk).values_list("domain", flat=True).first()
        if old:
            tenant_cache_invalidate(hosts=[old])


@receiver(post_save, sender=Domain)
@receiver(post_delete, sender=Domain)
def _domain_changed(sender, instance: Domain, **kwargs) -> None:
    tenant_cache_invalidate(hosts=[instance.domain])


def _client_ip(request) -> str | None:
    return client_ip(request)  # behind trusted proxies: the address they saw


@receiver(user_logged_in)
def _audit_login(sender, request, user, **kwargs) -> None:
    audit_record(action="auth.login", actor=user.email, tenant=getattr(request, "tenant", None), ip=_client_ip(request))


@receiver(user_login_failed)
def _audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    audit_record(
        action="auth.login_failed",
        actor=str(credentials.get("username") or credentials.get("email") or "")[:254],
        tenant=getattr(request, "tenant", None),
        ip=_client_ip(request),
    )
