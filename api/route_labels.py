"""The route a request was served by, as the access log and the latency metric name it: the
registered template (`/api/v1/environments/{id}`), never the caller's own spelling of the path.

The Functions host matches a route whatever the case of its literal segments, with or without a
trailing slash and with percent-escapes decoded (ASP.NET Core routing, which it uses:
https://learn.microsoft.com/aspnet/core/fundamentals/routing#route-templates), and a parameter
takes any segment. A label copied from the URL therefore let any caller, signed in or not, make
a metric series of their own per request (`/api/v1/environments/anything`, `/api/v1/%65nvironments`):
a cost in Application Insights and, past the SDK's cardinality limit, the real series lost."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from api.contract import ROUTES

# host.json's extensions.http.routePrefix (tests/api/test_route_labels.py holds the two together).
PREFIX = "/api"
UNMATCHED = f"{PREFIX}/(unmatched)"  # not one of the app's routes: never reached from the host
_NAMES = {"environment_id": "id"}  # a parameter's name in the label, as the label always had it

Template = tuple[tuple[str | None, ...], str]  # literal segments (None: a parameter), the label
Index = dict[tuple[str, int], list[Template]]  # by method and number of segments
# Built for as many routes as were registered (they register as their modules import), and
# replaced whole, never changed in place: handlers on threads read it.
_current: tuple[int, Index] = (-1, {})


def _built() -> Index:
    index: Index = {}
    for (method, path), _ in sorted(ROUTES.items(), key=lambda item: item[0][1].count("{")):
        segments = path.strip("/").split("/")
        literal = tuple(None if part.startswith("{") else part.lower() for part in segments)
        shown = "/".join(
            f"{{{_NAMES.get(part[1:-1], part[1:-1])}}}" if part.startswith("{") else part for part in segments
        )
        # Literal templates first, so `.../snapshots/report` is not read as a parameter.
        index.setdefault((method, len(segments)), []).append((literal, f"{PREFIX}/{shown}"))
    return index


def route_label(method: str, url: str) -> str:
    """The label of the route `method` and `url` were served by (HEAD by its GET)."""
    global _current
    count, index = _current
    if count != len(ROUTES):
        count, index = _current = (len(ROUTES), _built())
    path = unquote(urlsplit(url).path).lower()
    if not path.startswith(PREFIX + "/"):
        return UNMATCHED
    segments = path[len(PREFIX) + 1 :].strip("/").split("/")
    for literal, label in index.get(("GET" if method == "HEAD" else method, len(segments)), ()):
        # A literal segment as registered; a parameter's, anything but empty.
        if all(given == part if part else given for part, given in zip(literal, segments, strict=True)):
            return label
    return UNMATCHED
