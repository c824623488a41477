"""Walk a URLconf: every route with a concrete sample path, for crawling tests."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver


@dataclass(frozen=True)
class Route:
    pattern: str  # the route as written, e.g. "crm/contacts/<int:pk>/"
    name: str  # namespaced URL name, e.g. "crm:contact-detail"
    callback: object

    @property
    def params(self) -> list[str]:
        return [a or b for a, b in re.findall(_PARAM, self.pattern)]

    def path(self, **values) -> str:
        """A concrete path: named parameters from ``values`` (default 1 for numbers, else "x")."""

        def regex_group(match):
            name, body = match.group(1), match.group(2)
            if name in values:
                return str(values[name])
            if "|" in body:
                return body.strip("()").split("|")[0]
            return "1" if body in (r"\d+", "[0-9]+") or "[^/.]" in body else "x"

        path = re.sub(_REGEX_GROUP, regex_group, self.pattern)

        def conv(match):
            kind, name = match.group(1) or "str", match.group(2)
            return str(values.get(name, 1 if kind == "int" else "x"))

        path = re.sub(r"<(?:(\w+):)?(\w+)>", conv, path)
        return "/" + path.replace("^", "").replace("$", "").replace("\\.", ".")


_REGEX_GROUP = r"\(\?P<(\w+)>((?:[^()]|\([^()]*\))*)\)"
_PARAM = r"\(\?P<(\w+)>|<(?:\w+:)?(\w+)>"


def routes(urlconf: str) -> list[Route]:
    out: list[Route] = []

    def walk(patterns, prefix: str, namespace: str):
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = namespace + (f"{p.namespace}:" if p.namespace else "")
                walk(p.url_patterns, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern):
                out.append(Route(prefix + str(p.pattern), namespace + (p.name or ""), p.callback))

    walk(get_resolver(urlconf).url_patterns, "", "")
    return out
