"""What a request may carry besides its body: its route's query parameters only, each once; and
the methods a path takes (`Allow`, for 405 and OPTIONS). A parameter nobody reads is refused
rather than ignored: `?stat=approved` must not silently list every change."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import Request
from starlette.routing import Match

from ..domain.errors import ValidationError

METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")  # OPTIONS: every known path answers it


async def only_known_query_parameters(request: Request) -> None:
    """A router dependency: 422 naming a query parameter the route does not take (and the ones
    it does), or one given more than once.

    `async` on purpose: a plain `def` dependency costs every request a hop to the thread pool
    and back (bench/README.md, "Latest figures (API)"); this one does no I/O. A request without
    a query string, as every transition is, has nothing to check."""
    if not request.scope.get("query_string"):
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    known = _known(dependant) if dependant is not None else frozenset()
    given = Counter(name for name, _ in request.query_params.multi_items())
    for name in given:
        if name not in known:
            where = f"{request.method} {request.url.path}"
            allowed = f"allowed: {', '.join(sorted(known))}" if known else "it takes none"
            raise ValidationError(name, f"is not a query parameter of {where}; {allowed}")
    for name, times in given.items():
        if times > 1:
            raise ValidationError(name, "is given more than once; give it once")


_KNOWN: dict[int, tuple[Any, frozenset[str]]] = {}  # id(dependant) -> (it, its names): one per route


def _known(dependant: Any) -> frozenset[str]:
    """`_query_names`, computed once per route (the dependant is kept, so its id stays its own)."""
    hit = _KNOWN.get(id(dependant))
    if hit is None or hit[0] is not dependant:
        if len(_KNOWN) > 4096:  # routes are few; a framework that rebuilt them would not grow this
            _KNOWN.clear()
        hit = _KNOWN[id(dependant)] = (dependant, frozenset(_query_names(dependant)))
    return hit[1]


def _query_names(dependant: Any) -> set[str]:
    """The query parameters (by their names in the URL) of a route and its dependencies."""
    names = {str(field.alias) for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def allowed_methods(request: Request) -> list[str]:
    """The methods some route takes at the request's path, and OPTIONS; [] for an unknown path."""
    found = [m for m in METHODS if _routed(request, m)]
    return sorted([*found, "OPTIONS"]) if found else []


def _routed(request: Request, method: str) -> bool:
    scope = {**request.scope, "method": method}
    return any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes)
