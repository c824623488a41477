"""Rate limits shared by every process (they live in the default cache: Redis or the database)."""

from rest_framework.throttling import SimpleRateThrottle


class PrincipalRateThrottle(SimpleRateThrottle):
    """Per API key, per user or per IP, by what authenticated the request."""

    scope = "principal"

    def get_rate(self):
        return self.THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        tenant = getattr(request._request, "tenant", None)
        firm = tenant.schema_name if tenant else "public"
        auth = request.auth
        if hasattr(auth, "prefix"):
            ident = f"key:{auth.prefix}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{firm}:{request.user.pk}"
        else:
            self.scope = "anon"
            self.rate = self.get_rate()
            self.num_requests, self.duration = self.parse_rate(self.rate)
            ident = f"ip:{self.get_ident(request)}"
        return f"throttle:{self.scope}:{ident}"


class AuthRateThrottle(SimpleRateThrottle):
    """Tighter limit on credential endpoints (token issue), per IP."""

    scope = "auth"

    def get_cache_key(self, request, view):
        return f"throttle:auth:{self.get_ident(request)}"
