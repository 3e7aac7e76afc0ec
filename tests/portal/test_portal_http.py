"""The portal over HTTP (httpx against a live `cortex-change serve`): cookies, CSRF, session end,
sign-in failures and throttle, security headers, escaping, authorization, bad form input."""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from api.conftest import Api, serving
from portal.conftest import Portal

CSRF = re.compile(r'name="csrf" value="([^"]*)"')
SIGN_IN_FAILED = "sign-in failed: that identity and token do not match an active API token"


# --- helpers ---------------------------------------------------------------------------------


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, html[:2000]
    return found.group(1)


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """The response's Set-Cookie headers by cookie name (the whole header line each)."""
    return {line.split("=", 1)[0].strip(): line for line in response.headers.get_list("set-cookie")}


def attributes(line: str) -> dict[str, str]:
    """A Set-Cookie line's attributes, names lower-cased (flags map to '')."""
    out: dict[str, str] = {}
    for part in line.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        out[name.lower()] = value
    return out


def client(portal: Portal) -> httpx.Client:
    return httpx.Client(base_url=portal.url, timeout=30, follow_redirects=False)


def try_sign_in(
    c: httpx.Client, identity: str, token: str, next_: str = "/", headers: dict[str, str] | None = None
) -> httpx.Response:
    """GET /signin, then POST the form with its CSRF token (the client's cookie jar carries cc_signin)."""
    form = c.get("/signin")
    assert form.status_code == 200, form.text
    data = {"csrf": csrf_of(form.text), "identity": identity, "token": token, "next": next_}
    return c.post("/signin", data=data, headers=headers or {})


@contextlib.contextmanager
def signed_in(portal: Portal, identity: str, token: str | None = None) -> Iterator[httpx.Client]:
    """A client with a live session for `identity` (its fixture token unless `token` is given)."""
    with client(portal) as c:
        r = try_sign_in(c, identity, token or portal.tokens[identity])
        assert r.status_code == 303, r.text
        assert "cc_session" in c.cookies
        yield c


def page_csrf(c: httpx.Client, path: str = "/") -> str:
    r = c.get(path)
    assert r.status_code == 200, r.text
    return csrf_of(r.text)


def session_hash(c: httpx.Client) -> str:
    return hashlib.sha256(c.cookies["cc_session"].encode("ascii")).hexdigest()


def execute(store: str, sql: str, params: tuple[Any, ...] = ()) -> int:
    """A write straight to the SQLite store file, committed; the number of rows changed."""
    conn = sqlite3.connect(store, timeout=30)
    try:
        with conn:
            return conn.execute(sql, params).rowcount
    finally:
        conn.close()


def change_doc(portal: Portal, change_id: str) -> dict[str, Any]:
    r = portal.api.as_("alice").get(f"/changes/{change_id}")
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def change_count(portal: Portal) -> int:
    r = portal.api.as_("alice").get("/changes", params={"limit": 1000})
    assert r.status_code == 200, r.text
    return len(r.json()["items"])


def audit_ok(portal: Portal) -> None:
    r = portal.api.as_("alice").get("/audit/verify")
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True, r.json()


class Markup(HTMLParser):
    """What an HTML page holds that a strict CSP would block: inline styles, handlers, scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.styles: list[str] = []
        self.handlers: list[str] = []
        self.inline_scripts: list[str] = []
        self.style_elements = 0
        self._in_script = False
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "style":
                self.styles.append(f"<{tag} style={value!r}>")
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}={value!r}>")
        if tag == "script":
            self._in_script = True
        if tag == "style":
            self.style_elements += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data[:200])
        self.text.append(data)


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# portal.css: `.wrap, td, dd, li, p, code, pre { overflow-wrap: anywhere; unicode-bidi: plaintext }`
CONTAINED = {"td", "dd", "li", "p", "code", "pre"}


class Holders(HTMLParser):
    """For each text chunk holding `needle`: whether an enclosing element wraps long words and
    isolates bidirectional text (portal.css's rule), and the open elements."""

    def __init__(self, needle: str) -> None:
        super().__init__(convert_charrefs=True)
        self.needle = needle
        self.stack: list[tuple[str, str]] = []
        self.found: list[tuple[bool, list[tuple[str, str]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append((tag, dict(attrs).get("class") or ""))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        if self.needle in data and not any(t in ("title", "option", "textarea") for t, _ in self.stack):
            ok = any(t in CONTAINED or "wrap" in c.split() for t, c in self.stack)
            self.found.append((ok, list(self.stack)))


def contained(html: str, needle: str) -> int:
    """How often `needle` appears as text; fails if once outside portal.css's wrapping/isolating rule."""
    h = Holders(needle)
    h.feed(html)
    h.close()
    loose = [stack for ok, stack in h.found if not ok]
    assert loose == [], (needle[:20], loose)
    return len(h.found)


def parsed(html: str) -> Markup:
    m = Markup()
    m.feed(html)
    m.close()
    return m


@pytest.fixture(scope="module")
def alice(portal: Portal) -> Iterator[httpx.Client]:
    with signed_in(portal, "alice") as c:
        yield c


# --- 1. cookie flags -------------------------------------------------------------------------


def test_session_cookie_flags_over_http(portal: Portal) -> None:
    with client(portal) as c:
        r = try_sign_in(c, "alice", portal.tokens["alice"])
        assert r.status_code == 303, r.text
        line = set_cookies(r)["cc_session"]
        flags = attributes(line)
        assert "httponly" in flags, line
        assert flags.get("samesite", "").lower() == "strict", line
        assert flags.get("path") == "/", line
        assert flags.get("max-age") == "28800", line  # PORTAL_SESSION_TTL's default
        assert "secure" not in flags, line  # plain http: a Secure cookie would never come back
        assert c.get("/").status_code == 200


def test_session_cookie_is_secure_when_the_request_came_over_https(portal: Portal) -> None:
    """uvicorn trusts X-Forwarded-Proto from 127.0.0.1 (its default FORWARDED_ALLOW_IPS): the
    request's scheme is https, so the cookie is Secure."""
    https = {"X-Forwarded-Proto": "https"}
    with client(portal) as c:
        form = c.get("/signin", headers=https)
        assert form.status_code == 200
        pre = set_cookies(form)["cc_signin"]
        assert "secure" in attributes(pre), pre
        data = {"csrf": csrf_of(form.text), "identity": "alice", "token": portal.tokens["alice"], "next": "/"}
        secret = form.cookies["cc_signin"]
        r = c.post("/signin", data=data, headers={**https, "Cookie": f"cc_signin={secret}"})
        assert r.status_code == 303, r.text
        line = set_cookies(r)["cc_session"]
        flags = attributes(line)
        assert "secure" in flags, line
        assert "httponly" in flags and flags.get("samesite", "").lower() == "strict", line
        assert flags.get("path") == "/" and flags.get("max-age") == "28800", line


def test_session_cookie_max_age_follows_portal_session_ttl(tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    with serving(str(cwd / "store.db"), cwd, toml="PORTAL_SESSION_TTL = 600\n") as api:
        own = Portal(url=api.server.url, tokens=api.tokens, api=api)
        with client(own) as c:
            r = try_sign_in(c, "alice", own.tokens["alice"])
            assert r.status_code == 303, r.text
            assert attributes(set_cookies(r)["cc_session"]).get("max-age") == "600"
        (lasts,) = _one(api, "SELECT max(expires_at - created_at) FROM portal_sessions")
        assert abs(float(lasts) - 600) < 2


def _one(api: Api, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    """One row straight from the server's SQLite store."""
    conn = sqlite3.connect(api.store, timeout=30)
    try:
        row = conn.execute(sql, params).fetchone()
    finally:
        conn.close()
    assert row is not None
    return tuple(row)


# --- 2. CSRF ---------------------------------------------------------------------------------


@pytest.mark.parametrize("csrf", [None, "", "0" * 64, "not-a-token"])
def test_signin_without_the_forms_csrf_is_refused(portal: Portal, csrf: str | None) -> None:
    with client(portal) as c:
        assert c.get("/signin").status_code == 200  # a cc_signin cookie, but not its token below
        data = {"identity": "alice", "token": portal.tokens["alice"], "next": "/"}
        if csrf is not None:
            data["csrf"] = csrf
        r = c.post("/signin", data=data)
        assert r.status_code == 403, r.text
        assert "CSRF" in r.text
        assert "cc_session" not in set_cookies(r)
        assert "cc_session" not in c.cookies


def test_signin_with_another_browsers_csrf_is_refused(portal: Portal) -> None:
    with client(portal) as mine, client(portal) as theirs:
        their_csrf = csrf_of(theirs.get("/signin").text)
        mine.get("/signin")
        data = {"csrf": their_csrf, "identity": "alice", "token": portal.tokens["alice"], "next": "/"}
        r = mine.post("/signin", data=data)
        assert r.status_code == 403, r.text
        assert "cc_session" not in set_cookies(r)


def test_signin_without_the_presession_cookie_is_refused(portal: Portal) -> None:
    with client(portal) as c:
        token = csrf_of(c.get("/signin").text)
        c.cookies.clear()
        data = {"csrf": token, "identity": "alice", "token": portal.tokens["alice"], "next": "/"}
        r = c.post("/signin", data=data)
        assert r.status_code == 403, r.text
        assert "cc_session" not in set_cookies(r)


@pytest.mark.parametrize("action", ["assess", "approve"])
def test_change_actions_without_this_sessions_csrf_write_nothing(portal: Portal, action: str) -> None:
    change = portal.api.create("alice", title=f"CSRF target for {action}")
    cid = change["change_id"]
    if action == "approve":
        r = portal.api.as_("alice").post(f"/changes/{cid}/assess")
        assert r.status_code == 200, r.text
    before = change_doc(portal, cid)
    who = "alice" if action == "assess" else "tech-lead"
    with signed_in(portal, who) as me, signed_in(portal, "ops-lead") as other:
        other_csrf = page_csrf(other)
        mine = page_csrf(me)
        assert other_csrf != mine
        base = {"version": str(before["version"]), "reason": "looks fine"}
        for sent in (None, "", other_csrf, mine[:-1] + ("0" if mine[-1] != "0" else "1")):
            data = dict(base) if sent is None else {**base, "csrf": sent}
            r = me.post(f"/changes/{cid}/{action}", data=data)
            assert r.status_code == 403, (sent, r.status_code, r.text)
            assert "CSRF" in r.text
        after = change_doc(portal, cid)
        assert (after["version"], after["state"], after["approvals"]) == (
            before["version"],
            before["state"],
            before["approvals"],
        )
        # The same form with this session's token goes through: the refusals above were the CSRF's.
        r = me.post(f"/changes/{cid}/{action}", data={**base, "csrf": mine})
        assert r.status_code == 303, r.text
        assert change_doc(portal, cid)["version"] == before["version"] + 1


def test_signout_without_this_sessions_csrf_ends_nothing(portal: Portal) -> None:
    with signed_in(portal, "alice") as me, signed_in(portal, "ops-lead") as other:
        other_csrf = page_csrf(other)
        for data in ({}, {"csrf": ""}, {"csrf": other_csrf}):
            r = me.post("/signout", data=data)
            assert r.status_code == 403, (data, r.text)
            assert "cc_session" not in set_cookies(r)
        assert me.get("/").status_code == 200  # still signed in
        live = "SELECT count(*) FROM portal_sessions WHERE session_hash = ?"
        assert _one(portal.api, live, (session_hash(me),))[0] == 1
        r = me.post("/signout", data={"csrf": page_csrf(me)})
        assert r.status_code == 303


def test_a_form_from_another_origin_is_refused(portal: Portal, alice: httpx.Client) -> None:
    cid = portal.api.create("alice", title="Origin target")["change_id"]
    csrf = page_csrf(alice)
    data = {"csrf": csrf, "version": "1"}
    for origin in (
        "https://evil.example",
        "null",
        f"{portal.url}.evil.example",
        portal.url.replace("http:", "https:"),
    ):
        r = alice.post(f"/changes/{cid}/assess", data=data, headers={"Origin": origin})
        assert r.status_code == 403, (origin, r.text)
        assert "another origin" in r.text
    assert change_doc(portal, cid)["version"] == 1
    r = alice.post(f"/changes/{cid}/assess", data=data, headers={"Origin": portal.url})
    assert r.status_code == 303, r.text
    assert change_doc(portal, cid)["version"] == 2


def test_a_signin_from_another_origin_is_refused(portal: Portal) -> None:
    with client(portal) as c:
        form = c.get("/signin")
        data = {"csrf": csrf_of(form.text), "identity": "alice", "token": portal.tokens["alice"], "next": "/"}
        r = c.post("/signin", data=data, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403, r.text
        assert "cc_session" not in set_cookies(r)


# --- 3. session expiry and end ---------------------------------------------------------------


def test_an_expired_session_sends_the_browser_to_sign_in(portal: Portal) -> None:
    with signed_in(portal, "alice") as c:
        assert c.get("/").status_code == 200
        rows = execute(
            portal.api.store,
            "UPDATE portal_sessions SET expires_at = ? WHERE session_hash = ?",
            (time.time() - 60, session_hash(c)),
        )
        assert rows == 1
        r = c.get("/")
        assert r.status_code == 303
        assert r.headers["location"] == "/signin?next=/"
        r = c.get("/changes")
        assert r.status_code == 303 and r.headers["location"] == "/signin?next=/changes"
        # A form POSTed on an expired session writes nothing either.
        cid = portal.api.create("alice", title="after expiry")["change_id"]
        r = c.post(f"/changes/{cid}/assess", data={"csrf": csrf_of_cookie(c), "version": "1"})
        assert r.status_code == 303 and r.headers["location"] == "/signin"
        assert change_doc(portal, cid)["version"] == 1


def csrf_of_cookie(c: httpx.Client) -> str:
    """The CSRF token a page would carry for this client's session (derived from the cookie)."""
    from cortex_change.services.sessions import csrf_token

    return csrf_token(c.cookies["cc_session"])


def test_signout_ends_the_session_on_the_server(portal: Portal) -> None:
    with signed_in(portal, "ops-lead") as c:
        kept = c.cookies["cc_session"]
        r = c.post("/signout", data={"csrf": page_csrf(c)})
        assert r.status_code == 303
        assert r.headers["location"] == "/signin"
        assert attributes(set_cookies(r)["cc_session"]).get("max-age") == "0"
        gone = "SELECT count(*) FROM portal_sessions WHERE session_hash = ?"
        assert _one(portal.api, gone, (hashlib.sha256(kept.encode()).hexdigest(),))[0] == 0
    with client(portal) as replay:  # the old cookie, kept by an attacker, opens nothing
        r = replay.get("/", headers={"Cookie": f"cc_session={kept}"})
        assert r.status_code == 303
        assert r.headers["location"] == "/signin?next=/"


def test_revoking_the_token_signed_in_with_ends_the_session(portal: Portal) -> None:
    made = portal.api.cli("token", "create", "revokee")
    assert made.code == 0, made.err
    token = made.out.strip()
    with signed_in(portal, "revokee", token) as c:
        assert c.get("/").status_code == 200
        res = portal.api.cli("token", "revoke", token.split("_")[1])
        assert res.code == 0, res.err
        r = c.get("/")
        assert r.status_code == 303
        assert r.headers["location"] == "/signin?next=/"


def test_signing_in_and_out_is_audited(portal: Portal) -> None:
    with signed_in(portal, "security-lead") as c:
        r = c.post("/signout", data={"csrf": page_csrf(c)})
        assert r.status_code == 303
    audit_ok(portal)
    log = portal.api.cli("audit", "log")
    assert log.code == 0, log.err
    lines = [line.split(" | ") for line in log.out.splitlines()]
    actions = [(parts[2], parts[3]) for parts in lines if len(parts) >= 4]
    assert ("signed_in", "security-lead") in actions, log.out
    assert ("signed_out", "security-lead") in actions, log.out
    # the last sign-in of security-lead comes before its sign-out
    last_in = max(i for i, a in enumerate(actions) if a == ("signed_in", "security-lead"))
    last_out = max(i for i, a in enumerate(actions) if a == ("signed_out", "security-lead"))
    assert last_in < last_out
    # The token's secret never lands in the audit log.
    assert portal.tokens["security-lead"] not in log.out
    # The portal's own audit page shows them too.
    with signed_in(portal, "alice") as viewer:
        page = viewer.get("/audit")
        assert page.status_code == 200
        assert "signed_in" in page.text and "signed_out" in page.text
    audit_ok(portal)


# --- 4. wrong credentials (the throttle has a server of its own: it counts per address) -------


def test_wrong_credentials_give_one_message_whatever_was_wrong(portal: Portal) -> None:
    """Three failures on the shared server (the throttle allows five per address)."""
    attempts = {
        "unknown identity": ("nobody-such", portal.tokens["alice"]),
        "wrong token": ("alice", portal.tokens["alice"][:-4] + "abcd"),
        "another identity's token": ("alice", portal.tokens["cto"]),
    }
    bodies = {}
    for what, (identity, token) in attempts.items():
        with client(portal) as c:
            r = try_sign_in(c, identity, token)
            assert r.status_code == 401, (what, r.text)
            assert "cc_session" not in set_cookies(r), what
            assert SIGN_IN_FAILED in r.text, (what, r.text)
            error = re.search(r'<p class="flash error" role="alert">(.*?)</p>', r.text, re.S)
            assert error is not None, r.text
            bodies[what] = error.group(1)
    assert len(set(bodies.values())) == 1, bodies
    (message,) = set(bodies.values())
    for hint in ("unknown", "revoked", "belongs", "wrong", "cto", "nobody-such"):
        assert hint not in message.lower(), message
    # Right credentials still work (three failures are under the limit).
    with signed_in(portal, "alice") as c:
        assert c.get("/").status_code == 200


def test_the_sixth_sign_in_after_five_failures_is_refused(tmp_path: Path) -> None:
    """A server of its own: the throttle counts per process, per address and per identity.

    uvicorn takes the client address from X-Forwarded-For when the peer is 127.0.0.1 (its default
    FORWARDED_ALLOW_IPS, as behind a local reverse proxy): that is how the addresses differ here."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    with serving(str(cwd / "store.db"), cwd) as api:
        own = Portal(url=api.server.url, tokens=api.tokens, api=api)
        wrong = api.tokens["ops-lead"][:-4] + "zzzz"

        def attempt(identity: str, token: str, address: str) -> httpx.Response:
            with client(own) as c:
                return try_sign_in(
                    c, identity, token, headers={"X-Forwarded-For": address} if address else {}
                )

        # Per address: five failures from one address (five identities) ...
        hostile = '"><script>alert(1)</script>'
        r = attempt(hostile, wrong, "10.0.0.1")
        assert r.status_code == 401
        assert hostile not in r.text and "&#34;&gt;&lt;script&gt;" in r.text  # the identity echoed, escaped
        for n in range(4):
            assert attempt(f"nobody-{n}", wrong, "10.0.0.1").status_code == 401
        # ... and the sixth from there is refused, even with the right token ...
        r = attempt("alice", api.tokens["alice"], "10.0.0.1")
        assert r.status_code == 429, r.text
        assert "too many failed sign-ins" in r.text
        assert "cc_session" not in set_cookies(r)
        # ... while another address signs in.
        assert attempt("alice", api.tokens["alice"], "10.0.0.2").status_code == 303

        # Per identity: five failures for one identity from five addresses ...
        for n in range(5):
            assert attempt("ops-lead", wrong, f"10.0.1.{n}").status_code == 401
        # ... and the sixth for it is refused from yet another address, with the right token.
        r = attempt("ops-lead", api.tokens["ops-lead"], "10.0.1.99")
        assert r.status_code == 429, r.text
        assert "too many failed sign-ins" in r.text
        assert "cc_session" not in set_cookies(r)
        assert _one(api, "SELECT count(*) FROM portal_sessions WHERE identity = 'ops-lead'")[0] == 0

        # Without X-Forwarded-For every attempt comes from 127.0.0.1: five failures lock it too.
        for _ in range(5):
            assert attempt("cto", wrong, "").status_code == 401
        assert attempt("ciso", api.tokens["ciso"], "").status_code == 429


# --- 5. security headers and no inline script or style -----------------------------------------


def check_headers(r: httpx.Response) -> None:
    csp = r.headers.get("content-security-policy", "")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert directives.get("script-src") == "script-src 'self'", (r.url, csp)
    assert directives.get("style-src") == "style-src 'self'", (r.url, csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
    assert r.headers.get("x-frame-options") == "DENY", r.url
    assert r.headers.get("x-content-type-options") == "nosniff", r.url
    assert r.headers.get("cache-control") == "no-store", r.url


def check_markup(r: httpx.Response) -> None:
    m = parsed(r.text)
    assert m.styles == [], (r.url, m.styles)
    assert m.handlers == [], (r.url, m.handlers)
    assert m.inline_scripts == [], (r.url, m.inline_scripts)
    assert m.style_elements == 0, r.url
    assert not re.search(r"<[^>]+\sstyle\s*=", r.text), r.url


def test_every_page_has_the_security_headers_and_no_inline_code(portal: Portal, alice: httpx.Client) -> None:
    cid = portal.api.create("alice", title="Headers target")["change_id"]
    pages = [
        "/",
        "/changes",
        "/changes?mine=1",
        "/changes?state=pending",
        "/changes/new",
        f"/changes/{cid}",
        "/inbox",
        "/cab",
        "/audit",
        "/audit?verify=1",
        "/compliance",
        "/incidents",
    ]
    for path in pages:
        r = alice.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:500])
        assert r.headers["content-type"].startswith("text/html")
        check_headers(r)
        check_markup(r)
    # Refusals and errors are pages too, with the same headers.
    for path, status in (
        ("/tokens", 403),
        ("/changes/RFC-20200101000000-abcdef", 404),
        ("/changes?type=bogus", 422),
    ):
        r = alice.get(path)
        assert r.status_code == status, (path, r.status_code)
        check_headers(r)
        check_markup(r)
    # Signed out: the sign-in page, the redirect to it, and a refused form.
    with client(portal) as anon:
        r = anon.get("/signin")
        check_headers(r)
        check_markup(r)
        r = anon.get("/")
        assert r.status_code == 303
        check_headers(r)
        r = anon.post("/signin", data={"identity": "alice"})
        assert r.status_code == 403
        check_headers(r)
        check_markup(r)
    # A POST answered with a page (the new-change form again).
    r = alice.post("/changes/new", data={"csrf": page_csrf(alice), "op": "add:implementation_plan"})
    assert r.status_code == 200, r.text
    check_headers(r)
    check_markup(r)


def test_static_files_are_not_sniffed(portal: Portal) -> None:
    with client(portal) as c:
        for path, kind in (("/static/portal.css", "text/css"), ("/static/htmx.min.js", "javascript")):
            r = c.get(path)
            assert r.status_code == 200, path
            assert r.headers.get("x-content-type-options") == "nosniff", path
            assert kind in r.headers["content-type"], (path, r.headers["content-type"])


# --- 6. escaping -----------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
QUOTES = "\"quotes' & ampersands"
RTL = "invoice\u202egnp.exe"
LONG = "W" * 200


def test_user_text_is_escaped_on_the_list_detail_and_inbox(portal: Portal) -> None:
    filed = {
        "script": portal.api.create("alice", title=SCRIPT, description=f"desc {SCRIPT}"),
        "quotes": portal.api.create("alice", title=QUOTES, description=f"desc {QUOTES}"),
        "rtl": portal.api.create("alice", title=RTL, description=f"desc {RTL}"),
        "long": portal.api.create("alice", title=LONG, description=LONG + " " + LONG),
    }
    for doc in filed.values():
        r = portal.api.as_("alice").post(f"/changes/{doc['change_id']}/assess")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "pending_approval", r.json()["state"]

    def check(html: str, where: str, descriptions: bool) -> None:
        assert SCRIPT not in html, where
        assert "<script>alert" not in html, where
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, where
        assert QUOTES not in html and "\"quotes'" not in html, where
        assert "quotes&#39; &amp; ampersands" in html, where
        assert "&#34;quotes" in html or "&quot;quotes" in html, where
        text = "".join(parsed(html).text)
        assert SCRIPT in text and QUOTES in text and RTL in text and LONG in text, where
        if descriptions:
            assert f"desc {SCRIPT}" in text and f"desc {QUOTES}" in text, where
        m = parsed(html)
        assert m.inline_scripts == [] and m.handlers == [], where
        assert contained(html, RTL) and contained(html, LONG), where

    with signed_in(portal, "alice") as me:
        r = me.get("/changes", params={"requested_by": "alice"})
        assert r.status_code == 200
        check(r.text, "list", descriptions=False)
        for what, doc in filed.items():
            r = me.get(f"/changes/{doc['change_id']}")
            assert r.status_code == 200
            html = r.text
            assert SCRIPT not in html, what
            text = "".join(parsed(html).text)
            if what == "script":
                assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
                assert f"desc {SCRIPT}" in text
            elif what == "quotes":
                assert "\"quotes'" not in html
                assert "quotes&#39; &amp; ampersands" in html
                assert f"desc {QUOTES}" in text
            elif what == "rtl":
                assert RTL in text and f"desc {RTL}" in text
                assert contained(html, RTL) >= 2  # the title and the description, each isolated
            else:
                assert LONG in text
                assert contained(html, LONG) >= 2  # the title and the description, each wrapping
            assert parsed(html).inline_scripts == []
    with signed_in(portal, "tech-lead") as lead:
        r = lead.get("/inbox")
        assert r.status_code == 200
        for doc in filed.values():
            assert doc["change_id"] in r.text, "every filed change waits for the tech lead"
        check(r.text, "inbox", descriptions=False)


# --- 7. authorization through the portal ----------------------------------------------------


def test_a_requester_cannot_approve_their_own_change_through_the_portal(portal: Portal) -> None:
    cid = portal.api.create("tech-lead", title="Mine to approve?")["change_id"]
    r = portal.api.as_("tech-lead").post(f"/changes/{cid}/assess")
    assert r.status_code == 200, r.text
    before = change_doc(portal, cid)
    assert before["state"] == "pending_approval"
    with signed_in(portal, "tech-lead") as me:
        data = {"csrf": page_csrf(me), "version": str(before["version"]), "reason": "I trust myself"}
        r = me.post(f"/changes/{cid}/approve", data=data)
        assert r.status_code == 403, r.text
        assert "they requested it" in r.text
    after = change_doc(portal, cid)
    assert (after["version"], after["state"], after["approvals"]) == (
        before["version"],
        before["state"],
        before["approvals"],
    )


def test_tokens_page_is_for_admins_only(portal: Portal, alice: httpx.Client) -> None:
    r = alice.get("/tokens")
    assert r.status_code == 403
    assert "may not manage API tokens" in r.text
    assert portal.tokens["alice"].split("_")[1] not in r.text  # no token list leaks


def test_a_forged_token_creation_by_a_non_admin_creates_nothing(portal: Portal, alice: httpx.Client) -> None:
    count = "SELECT count(*) FROM api_tokens"
    before = _one(portal.api, count)[0]
    r = alice.post("/tokens", data={"csrf": page_csrf(alice), "name": "forged"})
    assert r.status_code == 403, r.text
    assert "may not manage API tokens" in r.text
    assert "cc_" not in r.text
    assert _one(portal.api, count)[0] == before
    assert _one(portal.api, "SELECT count(*) FROM api_tokens WHERE name = 'forged'")[0] == 0
    # Nor may a non-admin revoke one.
    target = portal.tokens["cto"].split("_")[1]
    r = alice.post(f"/tokens/{target}/revoke", data={"csrf": page_csrf(alice)})
    assert r.status_code == 403, r.text
    assert _one(portal.api, "SELECT revoked_at FROM api_tokens WHERE token_id = ?", (target,))[0] is None


@pytest.mark.parametrize(
    "target",
    ["//evil.example", "https://evil.example", "/\\evil.example", "http:/evil.example", "evil.example"],
)
def test_signin_never_redirects_off_site(portal: Portal, target: str) -> None:
    with client(portal) as c:
        form = c.get("/signin", params={"next": target})
        assert 'name="next" value="/"' in form.text  # the form itself carries only a local path
        r = try_sign_in(c, "alice", portal.tokens["alice"], next_=target)
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/", r.headers["location"]


@pytest.mark.parametrize(
    "target", ["/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", " //evil.example"]
)
def test_signin_next_stays_on_site_as_a_browser_reads_it(portal: Portal, target: str) -> None:
    """Browsers drop tabs and newlines from a URL and trim it, and read a backslash as a slash:
    whatever Location says, read that way, it is a path on this site."""
    with client(portal) as c:
        r = try_sign_in(c, "alice", portal.tokens["alice"], next_=target)
        assert r.status_code == 303, r.text
        location = r.headers["location"]
        read = re.sub(r"[\t\n\r]", "", location).strip().replace("\\", "/")
        assert read.startswith("/") and not read.startswith("//"), location
        assert urlsplit(read).netloc == "", location


def test_a_form_s_back_field_never_leaves_the_site(portal: Portal, alice: httpx.Client) -> None:
    cid = portal.api.create("alice", title="Back target")["change_id"]
    data = {"csrf": page_csrf(alice), "version": "1", "back": "//evil.example/x"}
    r = alice.post(f"/changes/{cid}/assess", data=data)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/"


def test_signin_follows_a_local_next(portal: Portal) -> None:
    with client(portal) as c:
        r = c.get("/inbox")
        assert r.status_code == 303 and r.headers["location"] == "/signin?next=/inbox"
        r = try_sign_in(c, "alice", portal.tokens["alice"], next_="/inbox")
        assert r.status_code == 303
        assert r.headers["location"] == "/inbox"


# --- 8. bad input on the new-change form --------------------------------------------------------


def new_change_form(csrf: str, **fields: str) -> dict[str, str]:
    data = {
        "csrf": csrf,
        "op": "submit",
        "type": "normal",
        "category": "deployment",
        "title": "A good title",
        "description": "",
        "impact": "low",
        "urgency": "low",
        "implementation_plan.kind": "text",
        "implementation_plan.value": "deploy it",
        "rollback_plan.kind": "text",
        "rollback_plan.value": "roll it back",
        "test_plan.kind": "text",
        "test_plan.value": "",
    }
    data.update(fields)
    return data


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({"category": "no-such-category"}, "category"),
        ({"impact": "catastrophic"}, "impact"),
        ({"title": "T" * 201}, "title"),
        (
            {"implementation_plan.kind": "json", "implementation_plan.value": "{not json"},
            "implementation_plan step 1",
        ),
    ],
    ids=["unknown-category", "bad-impact", "title-201", "bad-json-step"],
)
def test_bad_input_on_the_new_change_form_files_nothing(
    portal: Portal, alice: httpx.Client, fields: dict[str, str], names: str
) -> None:
    csrf = page_csrf(alice, "/changes/new")
    good = alice.post("/changes/new", data=new_change_form(csrf, op="preview"))
    assert good.status_code == 200, good.text  # the baseline form is valid: only `fields` breaks it
    before = change_count(portal)
    r = alice.post("/changes/new", data=new_change_form(csrf, **fields))
    assert r.status_code == 422, r.text
    error = re.search(r'<p class="flash error" role="alert">(.*?)</p>', r.text, re.S)
    assert error is not None, r.text
    assert names in error.group(1), error.group(1)
    assert change_count(portal) == before
    check_headers(r)
