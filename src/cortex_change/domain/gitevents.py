"""Git and CI webhook events (docs/devops.md): GitHub's and GitLab's payloads read into one value,
the branch mapped to a change type and category by the GIT_*_CATEGORY keys, the repository to its
services, and the change request written from the commits. Pure: the door reads the request and
the services file the change; the signature checks are here (standard library only)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping

from . import validation as v
from .errors import ConfigError, ValidationError
from .model import ChangeType
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final

GITHUB, GITLAB = "github", "gitlab"
PUSH, MERGE, DEPLOYMENT = "push", "merge", "deployment"

# Which key decides for a branch (SPEC §9's DevOps keys): exact names first, then prefixes.
BRANCH_KEYS: dict[str, str] = {
    "main": "GIT_MAIN_CATEGORY",
    "master": "GIT_MAIN_CATEGORY",
    "develop": "GIT_DEVELOP_CATEGORY",
}
PREFIX_KEYS: dict[str, str] = {"hotfix/": "GIT_HOTFIX_CATEGORY", "feature/": "GIT_FEATURE_CATEGORY"}
GIT_KEYS = ("GIT_MAIN_CATEGORY", "GIT_DEVELOP_CATEGORY", "GIT_HOTFIX_CATEGORY", "GIT_FEATURE_CATEGORY")
# A key's value: a change type (the category is then DEFAULT_CATEGORY), a category (a normal change
# of it), or `none` (that branch files nothing). Standard changes need a model: never from a push.
TYPES: dict[str, ChangeType] = {"normal": ChangeType.NORMAL, "emergency": ChangeType.EMERGENCY}
NONE = "none"
DEFAULT_CATEGORY = "deployment"
COMMITS_LISTED = 50  # both providers send at most 20 commits in a push; a bound all the same
PRODUCTION = ("production", "prod")  # a deploy there has high impact (SPEC §10)


class Commit(Frozen):
    __slots__ = ("author", "id", "message")

    def __init__(self, id: str, message: str, author: str) -> None:
        self.id: Final = id
        self.message: Final = message
        self.author: Final = author


class GitEvent(Frozen):
    """One push, merged pull/merge request or deployment, whichever provider sent it.

    `branch`: the pushed branch, the request's target, or the deployed ref; `source`: a merged
    request's source branch; `subject`: its title or the deployment's description."""

    __slots__ = (
        "actor",
        "branch",
        "commits",
        "delivery",
        "environment",
        "kind",
        "number",
        "provider",
        "repository",
        "sha",
        "source",
        "subject",
        "text",
        "total_commits",
        "url",
    )

    def __init__(
        self,
        provider: str,
        delivery: str,
        kind: str,
        repository: str,
        branch: str,
        *,
        commits: tuple[Commit, ...] = (),
        total_commits: int | None = None,
        source: str | None = None,
        subject: str = "",
        text: str = "",
        environment: str | None = None,
        url: str = "",
        actor: str = "",
        sha: str = "",
        number: int | None = None,
    ) -> None:
        self.provider: Final = provider
        self.delivery: Final = delivery
        self.kind: Final = kind
        self.repository: Final = repository
        self.branch: Final = branch
        self.commits: Final = commits
        self.total_commits: Final = len(commits) if total_commits is None else total_commits
        self.source: Final = source
        self.subject: Final = subject
        self.text: Final = text
        self.environment: Final = environment
        self.url: Final = url
        self.actor: Final = actor
        self.sha: Final = sha
        self.number: Final = number

    @property
    def requester(self) -> str:
        """Who files its change: the provider and the repository (`github:octo-org/web`)."""
        return f"{self.provider}:{self.repository}"


class Ignored(Frozen):
    """A well-signed event that files no change, and why (answered 202, audited, counted)."""

    __slots__ = ("reason", "repository")

    def __init__(self, reason: str, repository: str | None = None) -> None:
        self.reason: Final = reason
        self.repository: Final = repository


# -- signatures ------------------------------------------------------------------------------


def github_signed(secret: str, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` with the shared secret."""
    if not secret or not header:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode("utf-8", "replace"))


def gitlab_signed(secret: str, header: str | None) -> bool:
    """`X-Gitlab-Token` is the secret token itself (GitLab signs nothing), compared in constant time."""
    if not secret or header is None:
        return False
    return hmac.compare_digest(secret.encode(), header.encode("utf-8", "replace"))


# -- reading payloads ------------------------------------------------------------------------


def _at(doc: Any, *path: str) -> Any:
    for key in path:
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc


def _text(doc: Any, *path: str, required: bool = True) -> str:
    value = _at(doc, *path)
    if isinstance(value, str) and (value or not required):
        return value
    if value is None and not required:
        return ""
    raise ValidationError("body." + ".".join(path), "is missing or not text")


def _number(doc: Any, *path: str) -> int | None:
    value = _at(doc, *path)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _branch(ref: str) -> str | None:
    """A branch name from a ref (`refs/heads/main` or `main`); None for a tag."""
    if ref.startswith("refs/tags/"):
        return None
    return ref.removeprefix("refs/heads/")


def _deleted(sha: str) -> bool:
    return bool(sha) and set(sha) == {"0"}


def _commits(raw: Any, author_key: str) -> tuple[Commit, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValidationError("body.commits", "is not a list")
    out = []
    for item in raw[:COMMITS_LISTED]:
        author = _at(item, "author", author_key) or _at(item, "author", "name") or ""
        out.append(
            Commit(_text(item, "id"), _text(item, "message", required=False), str(author) if author else "")
        )
    return tuple(out)


Parser = Callable[[str, "dict[str, Any]"], "GitEvent | Ignored"]


def _github_push(delivery: str, p: dict[str, Any]) -> GitEvent | Ignored:
    repo = _text(p, "repository", "full_name")
    ref = _text(p, "ref")
    branch = _branch(ref)
    if branch is None:
        return Ignored(f"a tag push ({ref}) files no change", repo)
    if p.get("deleted") is True or _deleted(_text(p, "after", required=False)):
        return Ignored(f"branch {branch} was deleted: nothing to change", repo)
    return GitEvent(
        GITHUB,
        delivery,
        PUSH,
        repo,
        branch,
        commits=_commits(p.get("commits"), "username"),
        url=_text(p, "compare", required=False),
        actor=_text(p, "pusher", "name", required=False) or _text(p, "sender", "login", required=False),
        sha=_text(p, "after", required=False),
    )


def _github_pull(delivery: str, p: dict[str, Any]) -> GitEvent | Ignored:
    repo = _text(p, "repository", "full_name")
    action = _text(p, "action")
    if action != "closed" or _at(p, "pull_request", "merged") is not True:
        return Ignored(f"pull_request {action[:40]!r} is not a merge: only merged pull requests file", repo)
    return GitEvent(
        GITHUB,
        delivery,
        MERGE,
        repo,
        _text(p, "pull_request", "base", "ref"),
        source=_text(p, "pull_request", "head", "ref"),
        subject=_text(p, "pull_request", "title"),
        text=_text(p, "pull_request", "body", required=False),
        url=_text(p, "pull_request", "html_url", required=False),
        actor=_text(p, "pull_request", "merged_by", "login", required=False)
        or _text(p, "sender", "login", required=False),
        sha=_text(p, "pull_request", "merge_commit_sha", required=False),
        number=_number(p, "pull_request", "number"),
    )


def _github_deployment(delivery: str, p: dict[str, Any]) -> GitEvent | Ignored:
    repo = _text(p, "repository", "full_name")
    if p.get("action", "created") != "created":
        return Ignored(f"deployment {str(p.get('action'))[:40]!r}: only created deployments file", repo)
    ref = _text(p, "deployment", "ref")
    branch = _branch(ref)
    if branch is None:
        return Ignored(f"a deployment of the tag {ref}: no branch to map", repo)
    return GitEvent(
        GITHUB,
        delivery,
        DEPLOYMENT,
        repo,
        branch,
        subject=_text(p, "deployment", "description", required=False),
        environment=_text(p, "deployment", "environment", required=False) or None,
        url=_text(p, "deployment", "url", required=False),
        actor=_text(p, "deployment", "creator", "login", required=False)
        or _text(p, "sender", "login", required=False),
        sha=_text(p, "deployment", "sha", required=False),
        number=_number(p, "deployment", "id"),
    )


def _gitlab_push(delivery: str, p: dict[str, Any]) -> GitEvent | Ignored:
    repo = _text(p, "project", "path_with_namespace")
    ref = _text(p, "ref")
    branch = _branch(ref)
    if branch is None:
        return Ignored(f"a tag push ({ref}) files no change", repo)
    if _deleted(_text(p, "after", required=False)):
        return Ignored(f"branch {branch} was deleted: nothing to change", repo)
    total = _number(p, "total_commits_count")
    return GitEvent(
        GITLAB,
        delivery,
        PUSH,
        repo,
        branch,
        commits=_commits(p.get("commits"), "name"),
        total_commits=total,
        url=_text(p, "project", "web_url", required=False),
        actor=_text(p, "user_username", required=False) or _text(p, "user_name", required=False),
        sha=_text(p, "checkout_sha", required=False) or _text(p, "after", required=False),
    )


def _gitlab_merge(delivery: str, p: dict[str, Any]) -> GitEvent | Ignored:
    repo = _text(p, "project", "path_with_namespace")
    attrs = _at(p, "object_attributes")
    action = _text(attrs, "action", required=False)
    if action != "merge":
        return Ignored(f"merge request {action[:40]!r} is not a merge: only merged requests file", repo)
    last = _at(attrs, "last_commit")
    commits = _commits([last], "name") if isinstance(last, dict) else ()
    return GitEvent(
        GITLAB,
        delivery,
        MERGE,
        repo,
        _text(attrs, "target_branch"),
        commits=commits,
        source=_text(attrs, "source_branch"),
        subject=_text(attrs, "title"),
        text=_text(attrs, "description", required=False),
        url=_text(attrs, "url", required=False),
        actor=_text(p, "user", "username", required=False),
        sha=_text(attrs, "merge_commit_sha", required=False),
        number=_number(attrs, "iid"),
    )


def _gitlab_deployment(delivery: str, p: dict[str, Any]) -> GitEvent | Ignored:
    repo = _text(p, "project", "path_with_namespace")
    status = _text(p, "status")
    if status != "running":  # a deployment's events: running, then success/failed/canceled
        return Ignored(
            f"deployment status {status[:40]!r}: a change is filed when one starts (running)", repo
        )
    # GitLab's payload names no ref: the project's default branch (where deployments come from),
    # unless a later version adds one.
    ref = _text(p, "ref", required=False) or _text(p, "project", "default_branch")
    branch = _branch(ref)
    if branch is None:
        return Ignored(f"a deployment of the tag {ref}: no branch to map", repo)
    return GitEvent(
        GITLAB,
        delivery,
        DEPLOYMENT,
        repo,
        branch,
        subject=_text(p, "commit_title", required=False),
        environment=_text(p, "environment", required=False) or None,
        url=_text(p, "deployable_url", required=False) or _text(p, "commit_url", required=False),
        actor=_text(p, "user", "username", required=False),
        sha=_text(p, "short_sha", required=False),
        number=_number(p, "deployment_id"),
    )


# The event header's value -> its reader; any other event is ignored (202, counted).
GITHUB_EVENTS: dict[str, Parser] = {
    "push": _github_push,
    "pull_request": _github_pull,
    "deployment": _github_deployment,
}
GITLAB_EVENTS: dict[str, Parser] = {
    "Push Hook": _gitlab_push,
    "Merge Request Hook": _gitlab_merge,
    "Deployment Hook": _gitlab_deployment,
}
EVENTS: dict[str, dict[str, Parser]] = {GITHUB: GITHUB_EVENTS, GITLAB: GITLAB_EVENTS}


def parse(provider: str, event: str, delivery: str, payload: Any) -> GitEvent | Ignored:
    """The event a signed payload describes; ValidationError when a known event is malformed."""
    readers = EVENTS[provider]
    if event not in readers:
        known = ", ".join(readers)
        return Ignored(f"{provider} event {event[:60]!r} files no change (known: {known})")
    if not isinstance(payload, dict):
        raise ValidationError("body", "is not a JSON object")
    return readers[event](delivery, payload)


# -- branch -> type and category; repository -> services -------------------------------------


def branch_key(branch: str) -> str | None:
    """The GIT_*_CATEGORY key that decides for a branch, or None (no pattern matches)."""
    if branch in BRANCH_KEYS:
        return BRANCH_KEYS[branch]
    for prefix, key in PREFIX_KEYS.items():
        if branch.startswith(prefix) and len(branch) > len(prefix):
            return key
    return None


def deciding(event: GitEvent) -> tuple[str, str] | Ignored:
    """(branch, key) that decides the change: a merged request from a hotfix branch keeps the
    hotfix's urgency, any other merge is its target's; a push to a feature branch is work in
    progress (its change comes when it merges or deploys)."""
    if event.kind == MERGE and event.source and branch_key(event.source) == "GIT_HOTFIX_CATEGORY":
        return event.source, "GIT_HOTFIX_CATEGORY"
    key = branch_key(event.branch)
    if key is None:
        patterns = ", ".join([*BRANCH_KEYS, *(p + "*" for p in PREFIX_KEYS)])
        return Ignored(
            f"branch {event.branch!r} matches no GIT_*_CATEGORY pattern ({patterns})", event.repository
        )
    if key == "GIT_FEATURE_CATEGORY" and event.kind == PUSH:
        return Ignored(
            f"a push to the feature branch {event.branch!r} files no change: its merge or deployment does",
            event.repository,
        )
    return event.branch, key


def classify(value: str, categories: list[str] | tuple[str, ...], key: str) -> tuple[ChangeType, str] | None:
    """A GIT_*_CATEGORY value as (type, category), or None for `none`; ConfigError otherwise."""
    if value == NONE:
        return None
    if value in TYPES:
        if DEFAULT_CATEGORY not in categories:
            raise ConfigError(key, f"{value!r} files {DEFAULT_CATEGORY} changes, not a configured category")
        return TYPES[value], DEFAULT_CATEGORY
    if value in categories:
        return ChangeType.NORMAL, value
    raise ConfigError(
        key,
        f"{value!r} is neither a change type (normal, emergency), none, nor a category "
        f"({', '.join(categories)})",
    )


def services_for(repository: str, table: Mapping[str, Any]) -> list[str]:
    """The services a repository is mapped to by `[repositories]` (names compared without letter
    case, as both providers do); an unmapped repository is the service of its own name."""
    for name, services in table.items():
        if name.lower() == repository.lower():
            if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
                raise ConfigError(f"[repositories] {name!r}", "must be a list of service names")
            try:
                return v.names("affected_services", services)
            except ValidationError as exc:
                raise ConfigError(f"[repositories] {name!r}", str(exc)) from None
    return [repository.rsplit("/", 1)[-1]]


# -- the change request ----------------------------------------------------------------------


def _line(text: str) -> str:
    """The first line of a text (a commit's subject), without surrounding white space."""
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


def bounded(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _more(event: GitEvent) -> str:
    extra = event.total_commits - 1
    return f" (+{extra} more commit{'s' if extra > 1 else ''})" if extra > 0 else ""


def title(event: GitEvent) -> str:
    """One line: what happened, where, and the head commit's or request's subject."""
    where = f"{event.repository}@{event.branch}"
    if event.kind == PUSH:
        head = event.commits[-1] if event.commits else None
        what = _line(head.message) if head else ""
        text = f"Push to {where}: {what}{_more(event)}" if what else f"Push to {where} ({event.sha[:12]})"
    elif event.kind == MERGE:
        mark = "#" if event.provider == GITHUB else "!"
        number = f" {mark}{event.number}" if event.number is not None else ""
        text = f"Merge{number} {event.source} into {where}: {_line(event.subject)}"
    else:
        to = f" to {event.environment}" if event.environment else ""
        what = _line(event.subject)
        text = f"Deploy {where} ({event.sha[:12]}){to}" + (f": {what}" if what else "")
    return bounded(text, v.TITLE_MAX)


def description(event: GitEvent) -> str:
    """Where it came from, then the request's text and every commit (messages whole, as sent)."""
    source = f" from {event.source}" if event.source else ""
    lines = [
        f"{event.provider} {event.kind} event, delivery {event.delivery}: {event.repository}, "
        f"branch {event.branch}{source}"
        + (f", environment {event.environment}" if event.environment else ""),
    ]
    if event.actor:
        lines.append(f"by {event.actor}")
    if event.url:
        lines.append(event.url)
    if event.sha:
        lines.append(f"commit {event.sha}")
    if event.text:
        lines += ["", event.text]
    if event.commits:
        shown = len(event.commits)
        lines += [
            "",
            f"commits ({event.total_commits}"
            + (f", {shown} listed):" if shown < event.total_commits else "):"),
        ]
        for c in event.commits:
            who = f" {c.author}:" if c.author else ""
            lines.append(f"- {c.id[:12]}{who} {c.message}")
    return bounded("\n".join(lines), v.DESCRIPTION_MAX)


def request(event: GitEvent, kind: tuple[ChangeType, str], services: list[str]) -> dict[str, Any]:
    """The change request's fields (checked afterwards by the field table, as any request is)."""
    change_type, category = kind
    production = (event.environment or "").lower() in PRODUCTION
    fields: dict[str, Any] = {
        "type": change_type.value,
        "category": category,
        "title": title(event),
        "description": description(event),
        "requested_by": event.requester,
        "affected_services": services,
        "impact": "high" if production else "medium",
        "urgency": "high" if change_type is ChangeType.EMERGENCY else "medium",
    }
    if event.environment:
        fields["environment"] = event.environment
    return fields
