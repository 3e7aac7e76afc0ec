"""Outbound HTTP that the runner's steps and the notification channels share: no redirects."""

from __future__ import annotations

import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: a 3xx is the answer (urllib would replay a POST as a GET, or leave
    the host a step was allowed to reach)."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: object,
        code: int,
        msg: str,
        headers: object,
        newurl: str,
    ) -> None:
        return None


def no_redirect_opener() -> urllib.request.OpenerDirector:
    """urllib's opener with redirects refused: a 3xx surfaces as an HTTPError of that status."""
    return urllib.request.build_opener(_NoRedirect)
