"""Django's ``SecurityMiddleware``, ``SessionMiddleware``, ``CommonMiddleware``,
``MessageMiddleware`` and ``XFrameOptionsMiddleware``, the same rules in one plain layer each
(decision 0704, fifth pass).

Each is a subclass of Django's class (``isinstance`` holds, every hook a project may override is
still called) that differs only in how much it pays per request:

- a plain synchronous ``__call__`` instead of ``MiddlewareMixin``'s (two ``hasattr`` tests and a
  dispatch per request); async requests take Django's path unchanged;
- settings read once (``codex.settings_snapshot``, read again after ``setting_changed``) instead of
  one lazy ``settings`` attribute (~3,000 instructions) per use;
- a header test against the response's own header store instead of ``Mapping``'s KeyError path
  (``codex.security.middleware.has_header``), and constant header values checked by Django's own
  conversion once, then stored as Django's ``ResponseHeaders.__setitem__`` stores them;
- ``CommonMiddleware``'s host validation (``request.get_host()``: its regular expression and the
  ``ALLOWED_HOSTS`` walk) remembered per ``Host`` header: the answer depends only on that header
  and three settings, and is forgotten when any of them changes.

Django's deploy checks recognise its middlewares by their dotted path only; ``codex.security.checks``
runs the same checks for these classes (tests/security/test_lean_middleware.py).
"""

from __future__ import annotations

from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.exceptions import PermissionDenied
from django.core.signals import setting_changed
from django.http.response import ResponseHeaders
from django.middleware.clickjacking import XFrameOptionsMiddleware as DjangoXFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware
from django.middleware.security import SecurityMiddleware as DjangoSecurityMiddleware
from django.utils.module_loading import import_string

from codex.settings_snapshot import SettingsSnapshot

_CONVERTER = ResponseHeaders({})


def _header(name: str, value: str) -> tuple[str, str]:
    """``(name, value)`` as ``response.headers[name] = value`` would store it (same checks: ASCII
    name, no newline, latin-1 or MIME-encoded value), for a value fixed by the settings."""
    return (
        _CONVERTER._convert_to_charset(name, "ascii"),
        _CONVERTER._convert_to_charset(value, "latin-1", mime_encode=True),
    )


class SecurityMiddleware(DjangoSecurityMiddleware):
    """Django's: HTTPS redirect, HSTS, ``X-Content-Type-Options``, ``Referrer-Policy``,
    ``Cross-Origin-Opener-Policy``. Settings are read in ``__init__`` as Django's does; the header
    values are built and checked there too, not on every response."""

    def __init__(self, get_response):
        super().__init__(get_response)
        sts = None
        if self.sts_seconds:
            sts = f"max-age={self.sts_seconds}"
            if self.sts_include_subdomains:
                sts += "; includeSubDomains"
            if self.sts_preload:
                sts += "; preload"
            sts = _header("Strict-Transport-Security", sts)
        self._sts = sts
        self._nosniff = _header("X-Content-Type-Options", "nosniff") if self.content_type_nosniff else None
        referrer = self.referrer_policy
        if referrer:
            referrer = ",".join([v.strip() for v in referrer.split(",")] if isinstance(referrer, str) else referrer)
            self._referrer = _header("Referrer-Policy", referrer)
        else:
            self._referrer = None
        coop = self.cross_origin_opener_policy
        self._coop = _header("Cross-Origin-Opener-Policy", coop) if coop else None

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        response = self.process_request(request) if self.redirect else None
        return self.process_response(request, response or self.get_response(request))

    def process_response(self, request, response):
        store = response.headers._store
        if self._sts is not None and request.is_secure() and "strict-transport-security" not in store:
            store["strict-transport-security"] = self._sts
        if self._nosniff is not None and "x-content-type-options" not in store:
            store["x-content-type-options"] = self._nosniff
        if self._referrer is not None and "referrer-policy" not in store:
            store["referrer-policy"] = self._referrer
        if self._coop is not None and "cross-origin-opener-policy" not in store:
            store["cross-origin-opener-policy"] = self._coop
        return response


_COMMON = SettingsSnapshot("DISALLOWED_USER_AGENTS", "PREPEND_WWW", "APPEND_SLASH", "USE_X_FORWARDED_HOST")
_HOST_SETTINGS = frozenset({"ALLOWED_HOSTS", "DEBUG", "USE_X_FORWARDED_HOST"})

# ``Host`` header -> itself, for the headers ``request.get_host()`` accepted. Bounded: a client
# sending random hosts empties it, never grows it.
_VALID_HOSTS: dict[str, str] = {}
_VALID_HOSTS_MAX = 1024


def _forget_hosts(*, setting, **kwargs):
    if setting in _HOST_SETTINGS:
        _VALID_HOSTS.clear()


setting_changed.connect(_forget_hosts)


def request_host(request) -> str:
    """``request.get_host()``: the same answer and the same ``DisallowedHost`` for a host that
    ``ALLOWED_HOSTS`` refuses, asked of Django once per ``Host`` header a worker sees."""
    meta = request.META
    if _COMMON().use_x_forwarded_host and "HTTP_X_FORWARDED_HOST" in meta:
        raw = meta["HTTP_X_FORWARDED_HOST"]
    elif "HTTP_HOST" in meta:
        raw = meta["HTTP_HOST"]
    else:  # rebuilt from SERVER_NAME and the port: Django's path, not remembered
        return request.get_host()
    if raw in _VALID_HOSTS:
        return raw
    host = request.get_host()  # raises DisallowedHost: nothing is remembered
    if len(_VALID_HOSTS) >= _VALID_HOSTS_MAX:
        _VALID_HOSTS.clear()
    _VALID_HOSTS[raw] = host
    return host


class CommonMiddleware(DjangoCommonMiddleware):
    """Django's: ``DISALLOWED_USER_AGENTS``, host validation, ``PREPEND_WWW``, ``APPEND_SLASH`` on a
    404, ``Content-Length`` on non-streaming responses."""

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        response = self.process_request(request)
        return self.process_response(request, response or self.get_response(request))

    def process_request(self, request):
        conf = _COMMON()
        user_agent = request.META.get("HTTP_USER_AGENT")
        if user_agent is not None:
            for user_agent_regex in conf.disallowed_user_agents:
                if user_agent_regex.search(user_agent):
                    raise PermissionDenied("Forbidden user agent")
        host = request_host(request)
        if conf.prepend_www and host and not host.startswith("www."):
            if self.should_redirect_with_slash(request):
                path = self.get_full_path_with_slash(request)
            else:
                path = request.get_full_path()
            return self.response_redirect_class(f"{request.scheme}://www.{host}{path}")
        return None

    def should_redirect_with_slash(self, request):
        if _COMMON().append_slash and not request.path_info.endswith("/"):
            return super().should_redirect_with_slash(request)
        return False

    def process_response(self, request, response):
        if response.status_code == 404 and self.should_redirect_with_slash(request):
            response = self.response_redirect_class(self.get_full_path_with_slash(request))
        if not response.streaming and "content-length" not in response.headers._store:
            response.headers._store["content-length"] = ("Content-Length", str(len(response.content)))
        return response


_XFRAME = SettingsSnapshot(X_FRAME_OPTIONS="DENY")


class XFrameOptionsMiddleware(DjangoXFrameOptionsMiddleware):
    """Django's: ``X-Frame-Options`` from ``X_FRAME_OPTIONS`` (default ``DENY``) unless the response
    has one or is ``@xframe_options_exempt``; ``get_xframe_options_value`` is still the hook."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self._checked: dict[str, tuple[str, str]] = {}

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        return self.process_response(request, self.get_response(request))

    def process_response(self, request, response):
        store = response.headers._store
        if "x-frame-options" in store or getattr(response, "xframe_options_exempt", False):
            return response
        value = self.get_xframe_options_value(request, response)
        entry = self._checked.get(value)
        if entry is None:
            entry = _header("X-Frame-Options", value)
            if len(self._checked) < 16:  # the setting's value, or the few a subclass returns
                self._checked[value] = entry
        store["x-frame-options"] = entry
        return response

    def get_xframe_options_value(self, request, response):
        return _XFRAME().x_frame_options.upper()


_SESSION = SettingsSnapshot("SESSION_COOKIE_NAME", "SESSION_SAVE_EVERY_REQUEST")


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's: the session from its cookie; saved, refreshed or deleted after the response. A
    request that neither brought a session cookie nor touched its session (API calls with a key,
    health checks, a first visit to a static page) leaves the response as Django's would: no
    cookie to set or delete, no ``Vary: Cookie``; it is returned without the settings reads."""

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        conf = _SESSION()
        request.session = self.SessionStore(request.COOKIES.get(conf.session_cookie_name))
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if (
            type(session) is self.SessionStore
            and not session.accessed
            and not session.modified
            and not conf.session_save_every_request
            and conf.session_cookie_name not in request.COOKIES
        ):
            return response
        return self.process_response(request, response)


_MESSAGES = SettingsSnapshot("MESSAGE_STORAGE")


class MessageMiddleware(DjangoMessageMiddleware):
    """Django's: ``request._messages`` from ``MESSAGE_STORAGE``, stored after the response. The
    storage class is imported once per value of the setting, not on every request."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self._storage: tuple[str, type] | None = None

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        path = _MESSAGES().message_storage
        storage = self._storage
        if storage is None or storage[0] != path:
            storage = self._storage = (path, import_string(path))
        request._messages = storage[1](request)
        return self.process_response(request, self.get_response(request))
