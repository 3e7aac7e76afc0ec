"""The portal's pages: thin routes that read the session, call services, and lay out views.

Every action a page offers comes from `domain/offers.py`; every POST goes through the same
services as the API (so the same rules, the same audit events) and answers with the record's
page again, or with the rule's refusal.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from ..domain import offers as offered
from ..domain import permissions, routing
from ..domain import validation as v
from ..domain.errors import CortexError, MissingPackage, NotFound, ValidationError
from ..domain.fields import FIELDS, ChangeRequest
from ..domain.lifecycle import GROUPS, State
from ..domain.model import ChangeType, ClosureStatus, Level, ReviewOutcome
from ..services import audit as audit_service
from ..services import changes as svc
from ..services import queries, reviews, sessions, tokens
from ..services.context import Context
from ..services.incidents import list_incidents
from . import forms, views
from .render import PortalRoute, page, see, status_of
from .session import (
    COOKIE,
    SIGNIN_COOKIE,
    Throttle,
    Viewer,
    form,
    set_cookie,
    signin_secret,
    viewer,
)

portal = APIRouter(route_class=PortalRoute, include_in_schema=False)
Form = Annotated[dict[str, list[str]], Depends(form)]
throttle = Throttle()
LIST_FILTERS = ("type", "category", "risk_level", "service", "requested_by", "created_from", "created_to")
PAGE_SIZE = 25
DATE_SHOWN = 64  # a backtest's dates are at most 40 characters: longer ones are refused, shortened
IN_FLIGHT = {State.APPROVED, State.IMPLEMENTING, State.IMPLEMENTED}


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.context()
    return ctx


def _me(request: Request) -> tuple[Context, Viewer]:
    ctx = _ctx(request)
    return ctx, viewer(ctx, request)


def _local(target: str) -> str:
    """Only this site's paths are followed after sign-in (no open redirect)."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


# --- signing in and out ---


@portal.get("/signin")
def signin_form(request: Request, next: str = "/") -> Response:
    secret = signin_secret(request)
    response = page(
        request,
        "signin.html",
        None,
        title="Sign in",
        csrf=sessions.csrf_token(secret),
        next=_local(next),
        identity="",
    )
    set_cookie(request, response, SIGNIN_COOKIE, secret, 3600)
    return response


@portal.post("/signin")
def signin(request: Request, fields: Form) -> Response:
    ctx = _ctx(request)
    identity = forms.first(fields, "identity").strip()[:200]
    keys = (f"address:{request.client.host if request.client else '-'}", f"identity:{identity}")
    throttle.check(*keys)
    target = _local(forms.first(fields, "next", "/"))
    try:
        secret, _ = sessions.sign_in(
            ctx, sessions.TokenProvider(), {"identity": identity, "token": forms.first(fields, "token")}
        )
    except sessions.SignInFailed as exc:
        throttle.failed(*keys)
        pre = signin_secret(request)
        return page(
            request,
            "signin.html",
            None,
            401,
            title="Sign in",
            csrf=sessions.csrf_token(pre),
            next=target,
            identity=identity,
            error=str(exc),
        )
    response = see(target)
    set_cookie(request, response, COOKIE, secret, int(ctx.settings["PORTAL_SESSION_TTL"]))
    response.delete_cookie(
        SIGNIN_COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return response


@portal.post("/signout")
def signout(request: Request, fields: Form) -> Response:
    sessions.sign_out(_ctx(request), request.cookies.get(COOKIE))
    response = see("/signin")
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return response


# --- dashboard and lists ---


@portal.get("/")
def dashboard(request: Request) -> Response:
    ctx, me = _me(request)
    from ..services.dashboard import dashboard as figures

    data = figures(ctx)
    return page(request, "dashboard.html", me, title="Dashboard", data=data, charts=views.charts(data))


@portal.get("/changes")
def changes_list(request: Request) -> Response:
    ctx, me = _me(request)
    q = request.query_params
    mine = q.get("mine") == "1"
    state = q.get("state") or None
    given = {k: q[k] for k in LIST_FILTERS if q.get(k)}
    if mine:
        given["requested_by"] = me.identity
    items: list[dict[str, Any]] = []
    error = None
    try:
        items = queries.list_changes(
            ctx, state=state, limit=PAGE_SIZE, before=q.get("before") or None, filters=given
        )
    except (ValidationError, NotFound) as exc:
        error = str(exc)
    keep = {k: v for k, v in q.items() if k != "before" and v}
    return page(
        request,
        "changes.html",
        me,
        422 if error else 200,
        title="My changes" if mine else "All changes",
        items=items,
        filters=keep,
        mine=mine,
        error=error,
        next=items[-1]["change_id"] if len(items) == PAGE_SIZE else None,
        states=sorted({*GROUPS, *(s.value for s in State)}),
        types=[t.value for t in ChangeType],
        levels=[lv.value for lv in Level],
        categories=ctx.policy.categories,
    )


# --- filing a change ---


def _new_page(
    request: Request, ctx: Context, me: Viewer, values: dict[str, Any], status: int = 200, **more: Any
) -> Response:
    from ..catalog.loader import load_catalog

    catalog = load_catalog(ctx.settings)
    more.setdefault("preview", None)
    more.setdefault("invalid", "")
    return page(
        request,
        "new.html",
        me,
        status,
        title="New change",
        values=values,
        fields=FIELDS,
        plans=forms.PLANS,
        types=[t.value for t in ChangeType],
        levels=[lv.value for lv in Level],
        categories=ctx.policy.categories,
        runbooks=sorted(catalog.runbooks.values(), key=lambda r: r.name),
        models=sorted(catalog.models),
        **more,
    )


@portal.get("/changes/new")
def new_change(request: Request) -> Response:
    ctx, me = _me(request)
    return _new_page(request, ctx, me, forms.state(None))


@portal.post("/changes/new")
def file_change(request: Request, fields: Form) -> Response:
    ctx, me = _me(request)
    values = forms.state(fields)
    op = forms.first(fields, "op")
    if op not in ("preview", "submit"):  # a step row added or removed: the form again
        return _new_page(request, ctx, me, values)
    try:
        checked = ChangeRequest.of(
            {**forms.request_fields(values), "requested_by": me.identity}, svc.limits(ctx.settings)
        )
        if op == "preview":
            change = svc.preview_change(ctx, checked)
            return _new_page(request, ctx, me, values, preview=_preview(ctx, change))
        change = svc.create_change(ctx, checked)
    except CortexError as exc:
        field = exc.field.split(" ")[0] if isinstance(exc, ValidationError) else ""
        status = 200 if op == "preview" else 422  # a preview's answer is the refusal (htmx swaps 2xx)
        return _new_page(request, ctx, me, values, status, error=str(exc), invalid=field)
    return see(f"/changes/{change.change_id}?done=created", request)


def _preview(ctx: Context, change: Any) -> dict[str, Any]:
    from ..domain.routing import requirements

    a = change.assessment
    return {
        "score": a.score,
        "level": a.level.value,
        "priority": a.priority,
        "route": a.route.value,
        "route_reason": a.route_reason,
        "state": change.state.value,
        "components": [(name, c.points, c.reason) for name, c in a.components.items()],
        "approvers": [
            {"role": r.role, "count": r.count, "members": sorted(r.members)}
            for r in requirements(a.route, ctx.policy, a.ciso)
        ],
    }


# --- one change ---


def _detail(request: Request, ctx: Context, me: Viewer, change_id: str) -> dict[str, Any]:
    change, trail = queries.change_and_trail(ctx, change_id=change_id)
    doc = queries.document(ctx, change, trail)
    from ..store.audit import altered

    steps, rollback_steps = views.progress(trail)
    now = ctx.clock()
    return {
        "change": change,
        "doc": doc,
        "trail": trail,
        "altered": altered(trail),
        "incidents": list_incidents(ctx, change_id=change_id)
        if any(e["action"] == "incident_opened" for e in trail)
        else [],
        "progress": steps,
        "rollback_steps": rollback_steps,
        "rounds": views.rounds(trail),
        "rollback": views.rollback(trail),
        "offers": offered.offers(change, me.identity, ctx.policy, now),
        "quorum": offered.quorum(change, ctx.policy),
        "live": change.state in IN_FLIGHT,
        "closures": [s.value for s in ClosureStatus if s is not ClosureStatus.CANCELLED],
        "outcomes": [o.value for o in ReviewOutcome],
        "roles": _roles(change, me, ctx),
        "prediction": _prediction(change, ctx),
    }


def _prediction(change: Any, ctx: Context) -> dict[str, Any] | None:
    """The learned prediction recorded at the assessment, unless ML_PREDICTION hides predictions."""
    a = change.assessment
    shown: dict[str, Any] | None = a.prediction if a is not None and ctx.settings["ML_PREDICTION"] else None
    return shown


def _roles(change: Any, me: Viewer, ctx: Context) -> list[str]:
    """The roles of the change's route the viewer holds (their vote may count under one)."""
    reqs = routing.needs(change, ctx.policy)
    return sorted({r.role for r in reqs if me.identity in r.members})


@portal.get("/changes/{change_id}")
def change_page(request: Request, change_id: str) -> Response:
    ctx, me = _me(request)
    view = _detail(request, ctx, me, change_id)
    done = request.query_params.get("done", "")
    notice = f"{done.replace('_', ' ')}: done" if done.isidentifier() and len(done) < 30 else None
    return page(request, "change.html", me, title=change_id, notice=notice, **view)


@portal.get("/changes/{change_id}/live")
def change_live(request: Request, change_id: str) -> Response:
    """The parts of a change's page that move while it is carried out (an htmx poll)."""
    ctx, me = _me(request)
    from .render import fragment

    return fragment("live.html", **_detail(request, ctx, me, change_id))


ACTIONS = ("assess", "approve", "reject", "implement", "close", "cancel", "review")


@portal.post("/changes/{change_id}/{action}")
def act(request: Request, change_id: str, action: str, fields: Form) -> Response:
    ctx, me = _me(request)
    if action not in ACTIONS:
        raise NotFound(f"no action {action!r}; actions: {', '.join(ACTIONS)}")
    version_text = forms.first(fields, "version")
    version = int(version_text) if version_text.isdigit() and len(version_text) < 18 else None
    reason = forms.first(fields, "reason").strip()
    who = me.identity
    if action == "assess":
        svc.assess_change(ctx, change_id=change_id, if_version=version)
    elif action == "approve":
        v.reason("reason", reason)
        svc.approve_change(
            ctx,
            change_id=change_id,
            approver=who,
            reason=reason,
            role=forms.first(fields, "role") or None,
            if_version=version,
        )
    elif action == "reject":
        v.reason("reason", reason)
        svc.reject_change(ctx, change_id=change_id, rejector=who, reason=reason, if_version=version)
    elif action == "implement":
        from ..services.dispatch import implement_or_queue

        implement_or_queue(ctx, change_id=change_id, actor=who, if_version=version)
    elif action == "close":
        svc.close_change(
            ctx,
            change_id=change_id,
            status=forms.first(fields, "status"),
            notes=forms.first(fields, "notes"),
            actor=who,
            if_version=version,
        )
    elif action == "cancel":
        v.reason("reason", reason)
        svc.cancel_change(ctx, change_id=change_id, actor=who, reason=reason, if_version=version)
    else:
        svc.review_change(
            ctx,
            change_id=change_id,
            reviewer=who,
            outcome=forms.first(fields, "outcome"),
            notes=forms.first(fields, "notes"),
            if_version=version,
        )
    back = forms.first(fields, "back")
    target = _local(back) if back else f"/changes/{change_id}?done={action}"
    return see(target, request)


# --- approvals, CAB ---


@portal.get("/inbox")
def inbox(request: Request) -> Response:
    ctx, me = _me(request)
    now = ctx.clock()
    waiting = [
        (c, offered.quorum(c, ctx.policy))
        for c in queries.records(ctx, state="pending")
        if offered.waits_for(c, me.identity, ctx.policy, now)
    ]
    return page(request, "inbox.html", me, title="Approvals", waiting=waiting)


@portal.get("/cab")
def cab(request: Request) -> Response:
    ctx, me = _me(request)
    from ..services.cab import agenda as cab_agenda

    error = None
    try:
        agenda: dict[str, Any] | None = cab_agenda(ctx)
    except MissingPackage as exc:
        agenda, error = None, str(exc)
    now = ctx.clock()
    items = []
    for row in agenda["changes"] if agenda else []:
        change, _ = queries.change_and_trail(ctx, change_id=row["change_id"])
        items.append(
            {
                "row": row,
                "change": change,
                "quorum": offered.quorum(change, ctx.policy),
                "offers": offered.offers(change, me.identity, ctx.policy, now),
            }
        )
    return page(
        request,
        "cab.html",
        me,
        title="CAB workbench",
        agenda=agenda,
        items=items,
        overdue=reviews.overdue_reviews(ctx),
        due=reviews.overdue_reviews(ctx, overdue=False),
        error=error,
    )


# --- audit, compliance, incidents ---


@portal.get("/audit")
def audit_page(request: Request) -> Response:
    ctx, me = _me(request)
    q = request.query_params
    day = q.get("day") or audit_service.today(ctx)
    verdict = audit_service.verify(ctx) if q.get("verify") == "1" else None
    error = None
    lines: list[str] = []
    try:
        lines = audit_service.log(ctx, day=day)
    except ValidationError as exc:
        error = str(exc)
    from ..services.compliance import last_witnessed  # the chain's last witnessed checkpoint

    return page(
        request,
        "audit.html",
        me,
        title="Audit",
        day=day,
        lines=lines,
        verdict=verdict,
        error=error,
        checkpoint=last_witnessed(ctx),
    )


@portal.get("/audit/export")
def audit_export(request: Request) -> Response:
    """The audit export (`audit export`) as one .tar.gz: day logs, the chain, its head."""
    ctx, _ = _me(request)
    with tempfile.TemporaryDirectory() as tmp:
        audit_service.export(ctx, directory=tmp, all_events=True)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for path in sorted(Path(tmp).rglob("*")):
                tar.add(path, arcname=f"audit-export/{path.relative_to(tmp)}", recursive=False)
    name = f"cortex-change-audit-{audit_service.today(ctx)}.tar.gz"
    return Response(
        buffer.getvalue(),
        media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@portal.get("/compliance")
def compliance_page(request: Request) -> Response:
    ctx, me = _me(request)
    from ..domain.compliance_report import FRAMEWORKS
    from ..services.compliance import compliance_report

    q = request.query_params
    framework = q.get("framework") or ""
    period = q.get("period") or "month"
    report = None
    error = None
    if framework:
        try:
            report = compliance_report(ctx, framework=framework, period_text=period)
        except ValidationError as exc:
            error = str(exc)
    fmt = q.get("format")
    if report is not None and fmt in ("csv", "json"):
        import json

        from ..cli.render_compliance import as_csv

        body = as_csv(report) if fmt == "csv" else json.dumps(report, indent=2, ensure_ascii=False)
        name = f"compliance-{framework}.{fmt}"
        return Response(
            body,
            media_type="text/csv; charset=utf-8" if fmt == "csv" else "application/json",
            headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
        )
    return page(
        request,
        "compliance.html",
        me,
        422 if error else 200,
        title="Compliance",
        frameworks=list(FRAMEWORKS),
        framework=framework,
        period=period,
        report=report,
        error=error,
    )


@portal.get("/risk")
def risk_page(request: Request) -> Response:
    """The learned risk model (docs/risk-model.md): the active model card or why there is none,
    and a backtest over `?from=&to=` (read only: it trains in memory and writes nothing)."""
    ctx, me = _me(request)
    from ..domain.schedule import instant
    from ..services import risk_model

    q = request.query_params
    start, end = q.get("from", "")[:DATE_SHOWN], q.get("to", "")[:DATE_SHOWN]
    result, error, status = None, None, 200
    if start or end:
        try:
            result = risk_model.backtest(ctx, start=instant("from", start), end=instant("to", end))
        except (ValidationError, MissingPackage) as exc:
            error, status = str(exc), status_of(exc)
    return page(
        request,
        "risk.html",
        me,
        status,
        title="Risk model",
        state=risk_model.status(ctx),
        backtest=result,
        start=start,
        end=end,
        error=error,
    )


@portal.get("/incidents")
def incidents_page(request: Request) -> Response:
    ctx, me = _me(request)
    return page(request, "incidents.html", me, title="Incidents", incidents=list_incidents(ctx))


# --- the CMDB ---


@portal.get("/cis")
def cis_page(request: Request) -> Response:
    ctx, me = _me(request)
    from ..domain.cmdb import TYPES
    from ..services import cmdb

    q = request.query_params
    tier = q.get("tier") or ""
    error, rows = None, []
    try:
        rows = cmdb.listing(
            ctx,
            type_=q.get("type") or None,
            tier=int(tier) if tier.isdigit() and len(tier) < 3 else None,
            owner=q.get("owner") or None,
        )
    except ValidationError as exc:
        error = str(exc)
    return page(
        request,
        "cis.html",
        me,
        422 if error else 200,
        title="CMDB",
        rows=rows,
        types=TYPES,
        filters=q,
        error=error,
    )


@portal.get("/cis/{name:path}")
def ci_page(request: Request, name: str) -> Response:
    """A CI: its record, what it relies on, its blast radius as a layered graph, its changes."""
    ctx, me = _me(request)
    from ..services import cmdb

    ci = cmdb.show(ctx, name=name)
    radius = cmdb.impact(ctx, names=[ci["name"]])
    changes = queries.list_changes(ctx, limit=PAGE_SIZE, filters={"service": ci["name"]})
    return page(
        request,
        "ci.html",
        me,
        title=ci["name"],
        ci=ci,
        radius=radius,
        changes=changes,
        graph=views.radius_graph(ci, radius),
    )


# --- API tokens (ADMINS) ---


def _admin(ctx: Context, me: Viewer) -> None:
    permissions.require(permissions.Act.MANAGE_TOKENS, me.identity, ctx.policy)


@portal.get("/tokens")
def tokens_page(request: Request) -> Response:
    ctx, me = _me(request)
    _admin(ctx, me)
    return page(request, "tokens.html", me, title="API tokens", tokens=tokens.list_tokens(ctx), created=None)


@portal.post("/tokens")
def token_create(request: Request, fields: Form) -> Response:
    ctx, me = _me(request)
    _admin(ctx, me)
    token_id, token = tokens.create_token(ctx, name=forms.first(fields, "name").strip(), actor=me.identity)
    return page(
        request,
        "tokens.html",
        me,
        201,
        title="API tokens",
        tokens=tokens.list_tokens(ctx),
        created={"token_id": token_id, "token": token},
    )


@portal.post("/tokens/{token_id}/revoke")
def token_revoke(request: Request, token_id: str, fields: Form) -> Response:
    ctx, me = _me(request)
    _admin(ctx, me)
    tokens.revoke_token(ctx, token_id=token_id, actor=me.identity)
    return see("/tokens", request)


# --- the calendar of planned changes ---

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _month(text: str | None, today: Any) -> tuple[int, int]:
    """`?month=YYYY-MM` (default: this month, UTC)."""
    if not text:
        return today.year, today.month
    year, dash, month = text.partition("-")
    if dash and len(year) == 4 and len(month) == 2 and year.isdigit() and month.isdigit():
        y, m = int(year), int(month)
        if 2000 <= y <= 9998 and 1 <= m <= 12:
            return y, m
    raise ValidationError("month", f"{text[:40]!r} is not a month: YYYY-MM, e.g. 2026-12")


def _shift(year: int, month: int, by: int) -> str:
    index = year * 12 + month - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _week(text: str | None) -> Any:
    """The date a `?week=` names, or None (bad input: the month view, with no error to show)."""
    from datetime import date

    try:
        return None if not text else date.fromisoformat(text[:10])
    except ValueError:
        return None


@portal.get("/calendar")
def calendar_page(request: Request) -> Response:
    """A month of planned changes (weeks as rows, days as cells, times UTC) with its freeze and
    maintenance windows shaded; `?month=YYYY-MM` moves between months."""
    from datetime import UTC, datetime, timedelta

    from ..services.calendar import month_view

    ctx, me = _me(request)
    now = ctx.clock().astimezone(UTC)
    year, month = _month(request.query_params.get("month"), now)
    first = datetime(year, month, 1, tzinfo=UTC)
    start = first - timedelta(days=first.weekday())  # the Monday on or before the 1st
    following = datetime.fromisoformat(f"{_shift(year, month, 1)}-01T00:00:00+00:00")
    end = following + timedelta(days=(7 - following.weekday()) % 7)  # up to a Sunday
    week = _week(request.query_params.get("week"))
    if week is not None:  # ?week=YYYY-MM-DD: the week (Monday to Sunday) holding that day
        start = datetime(week.year, week.month, week.day, tzinfo=UTC) - timedelta(days=week.weekday())
        end, first = start + timedelta(days=7), start
        year, month = start.year, start.month
    found, windows = month_view(ctx, start, end)
    weeks: list[list[dict[str, Any]]] = []
    day = start
    while day < end:
        after = day + timedelta(days=1)
        kinds = {w.kind for w in windows if w.overlaps(day, after)}
        classes = [f"cal-{k}" for k in sorted(kinds)]
        if day.month != month:
            classes.append("cal-out")
        if day.date() == now.date():
            classes.append("cal-today")
        cell = {
            "date": day,
            "today": day.date() == now.date(),
            "classes": " ".join(classes),
            "changes": [e for e in found if e.planned_start < after and day < e.planned_end],
            "windows": [w for w in windows if w.overlaps(day, after)],
        }
        if day.weekday() == 0:
            weeks.append([])
        weeks[-1].append(cell)
        day = after
    return page(
        request,
        "calendar.html",
        me,
        title="Calendar",
        month_label=f"{first:%B %Y}" if week is None else f"Week of {start:%Y-%m-%d}",
        week=None if week is None else f"{start:%Y-%m-%d}",
        previous_week=f"{start - timedelta(days=7):%Y-%m-%d}",
        next_week=f"{start + timedelta(days=7):%Y-%m-%d}",
        weekdays=WEEKDAYS,
        weeks=weeks,
        previous=_shift(year, month, -1),
        next_month=_shift(year, month, 1),
        planned=len(found),
    )
