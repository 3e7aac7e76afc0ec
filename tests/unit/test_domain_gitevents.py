"""Git and CI events (domain/gitevents.py): the providers' documented payloads read into one value,
the branch table, the repository table, the change request, the signatures."""

from __future__ import annotations

from typing import Any

import pytest

from cortex_change.domain import gitevents as git
from cortex_change.domain import validation as v
from cortex_change.domain.errors import ConfigError, ValidationError
from cortex_change.domain.fields import ChangeRequest
from cortex_change.domain.model import ChangeType
from cortex_change.domain.policy import DEFAULT_CATEGORY_WEIGHTS
from gitpayloads import (
    GITHUB_SECRET,
    GITLAB_TOKEN,
    HEAD,
    github_deployment,
    github_pull_request,
    github_push,
    github_signature,
    gitlab_deployment,
    gitlab_merge_request,
    gitlab_push,
)

CATEGORIES = list(DEFAULT_CATEGORY_WEIGHTS)
DEFAULTS = {
    "GIT_MAIN_CATEGORY": "deployment",
    "GIT_DEVELOP_CATEGORY": "deployment",
    "GIT_HOTFIX_CATEGORY": "emergency",
    "GIT_FEATURE_CATEGORY": "normal",
}


def _event(provider: str, event: str, payload: Any) -> git.GitEvent:
    parsed = git.parse(provider, event, "d-1", payload)
    assert isinstance(parsed, git.GitEvent), parsed
    return parsed


def _kind(
    event: git.GitEvent, keys: dict[str, str] = DEFAULTS
) -> tuple[ChangeType, str] | git.Ignored | None:
    decided = git.deciding(event)
    if isinstance(decided, git.Ignored):
        return decided
    _, key = decided
    return git.classify(keys[key], CATEGORIES, key)


# -- the providers' payloads -------------------------------------------------------------------


def test_github_push_of_three_commits() -> None:
    e = _event(git.GITHUB, "push", github_push())
    assert (e.provider, e.kind, e.repository, e.branch) == ("github", "push", "octo-org/web", "main")
    assert [c.message.splitlines()[0] for c in e.commits] == [
        "Add rate limiting to the checkout endpoint",
        "Fix rounding of VAT in the basket total",
        "Bump payment client to 4.2.1",
    ]
    assert e.commits[-1].id == HEAD and e.commits[0].author == "monalisa"
    assert e.actor == "monalisa" and e.sha == HEAD and e.requester == "github:octo-org/web"
    assert git.title(e) == "Push to octo-org/web@main: Bump payment client to 4.2.1 (+2 more commits)"
    text = git.description(e)
    assert "The total was computed in floats." in text  # whole messages, as sent
    assert "delivery d-1" in text and "compare/" in text


def test_github_merged_pull_request_maps_its_target_branch() -> None:
    e = _event(git.GITHUB, "pull_request", github_pull_request())
    assert (e.kind, e.branch, e.source, e.number, e.actor) == (
        "merge",
        "main",
        "feature/basket-vat",
        1347,
        "hubot",
    )
    assert git.title(e) == "Merge #1347 feature/basket-vat into octo-org/web@main: Compute VAT in decimals"
    assert "Fixes #1290." in git.description(e)
    assert _kind(e) == (ChangeType.NORMAL, "deployment")


def test_github_pull_request_closed_unmerged_or_opened_is_ignored() -> None:
    for payload in (github_pull_request(merged=False), github_pull_request(merged=False, action="opened")):
        parsed = git.parse(git.GITHUB, "pull_request", "d", payload)
        assert isinstance(parsed, git.Ignored) and "not a merge" in parsed.reason
        assert parsed.repository == "octo-org/web"


def test_github_deployment_to_production_has_high_impact() -> None:
    e = _event(git.GITHUB, "deployment", github_deployment())
    assert (e.kind, e.branch, e.environment, e.subject) == (
        "deployment",
        "main",
        "production",
        "Release 2026.03.2",
    )
    fields = git.request(e, (ChangeType.NORMAL, "deployment"), ["web"])
    assert fields["impact"] == "high" and fields["environment"] == "production"
    assert git.title(e) == f"Deploy octo-org/web@main ({HEAD[:12]}) to production: Release 2026.03.2"


def test_gitlab_push_counts_every_commit_even_those_not_listed() -> None:
    e = _event(git.GITLAB, "Push Hook", gitlab_push())
    assert (e.provider, e.repository, e.branch, e.total_commits, len(e.commits)) == (
        "gitlab",
        "mike/diaspora",
        "master",
        4,
        2,
    )
    assert e.actor == "jsmith" and e.commits[0].author == "Jordi Mallach"
    assert git.title(e) == "Push to mike/diaspora@master: fixed readme (+3 more commits)"
    assert "commits (4, 2 listed):" in git.description(e)


def test_gitlab_merge_request_merge() -> None:
    e = _event(git.GITLAB, "Merge Request Hook", gitlab_merge_request())
    assert (e.kind, e.branch, e.source, e.number, e.actor) == ("merge", "master", "ms-viewport", 1, "root")
    assert git.title(e) == "Merge !1 ms-viewport into mike/diaspora@master: MS-Viewport"
    assert "viewport meta tag" in git.description(e)


@pytest.mark.parametrize("action", ["open", "update", "close", "approved", "reopen"])
def test_gitlab_merge_request_other_actions_are_ignored(action: str) -> None:
    parsed = git.parse(git.GITLAB, "Merge Request Hook", "d", gitlab_merge_request(action=action))
    assert isinstance(parsed, git.Ignored) and repr(action) in parsed.reason


def test_gitlab_deployment_running_files_the_default_branch() -> None:
    e = _event(git.GITLAB, "Deployment Hook", gitlab_deployment())
    assert (e.kind, e.branch, e.environment, e.sha, e.number) == (
        "deployment",
        "master",
        "staging",
        "279484c0",
        15,
    )
    assert git.title(e) == "Deploy root/test-deployment-webhooks@master (279484c0) to staging: Add new file"


@pytest.mark.parametrize("status", ["success", "failed", "canceled", "blocked", "approved"])
def test_gitlab_deployment_other_statuses_are_ignored(status: str) -> None:
    parsed = git.parse(git.GITLAB, "Deployment Hook", "d", gitlab_deployment(status))
    assert isinstance(parsed, git.Ignored) and "running" in parsed.reason


@pytest.mark.parametrize(
    ("provider", "event"),
    [("github", "issues"), ("github", "ping"), ("github", "deployment_status"), ("gitlab", "Tag Push Hook"),
     ("gitlab", "Pipeline Hook"), ("gitlab", "push")],
)  # fmt: skip
def test_unknown_events_are_ignored_without_reading_the_body(provider: str, event: str) -> None:
    parsed = git.parse(provider, event, "d", None)
    assert isinstance(parsed, git.Ignored) and "files no change" in parsed.reason


@pytest.mark.parametrize(
    "payload",
    [
        github_push("refs/tags/v2.0.0"),
        {**github_push(), "deleted": True, "after": "0" * 40},
    ],
)
def test_tag_pushes_and_deleted_branches_are_ignored(payload: dict[str, Any]) -> None:
    assert isinstance(git.parse(git.GITHUB, "push", "d", payload), git.Ignored)


def test_gitlab_deleted_branch_is_ignored() -> None:
    payload = {**gitlab_push(), "after": "0" * 40, "checkout_sha": None}
    assert isinstance(git.parse(git.GITLAB, "Push Hook", "d", payload), git.Ignored)


@pytest.mark.parametrize(
    ("provider", "event", "payload", "field"),
    [
        ("github", "push", {"ref": "refs/heads/main"}, "body.repository.full_name"),
        ("github", "push", {**github_push(), "ref": 7}, "body.ref"),
        ("github", "push", {**github_push(), "commits": "many"}, "body.commits"),
        ("github", "push", {**github_push(), "commits": [{"message": "no id"}]}, "body.id"),
        ("github", "pull_request", [1, 2], "body"),
        ("gitlab", "Deployment Hook", {**gitlab_deployment(), "status": None}, "body.status"),
    ],
)
def test_malformed_known_events_name_the_field(provider: str, event: str, payload: Any, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        git.parse(provider, event, "d", payload)
    assert err.value.field == field


# -- the branch table ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("branch", "key"),
    [
        ("main", "GIT_MAIN_CATEGORY"),
        ("master", "GIT_MAIN_CATEGORY"),
        ("develop", "GIT_DEVELOP_CATEGORY"),
        ("hotfix/INC-2041-overflow", "GIT_HOTFIX_CATEGORY"),
        ("feature/basket-vat", "GIT_FEATURE_CATEGORY"),
        ("hotfix/", None),
        ("feature", None),
        ("release/2026.03", None),
        ("Main", None),
        ("mainline", None),
        ("bugfix/x", None),
    ],
)
def test_branch_table(branch: str, key: str | None) -> None:
    assert git.branch_key(branch) == key


@pytest.mark.parametrize(
    ("ref", "kind", "expected"),
    [
        ("refs/heads/main", "push", (ChangeType.NORMAL, "deployment")),
        ("refs/heads/develop", "push", (ChangeType.NORMAL, "deployment")),
        ("refs/heads/hotfix/INC-2041", "push", (ChangeType.EMERGENCY, "deployment")),
        ("refs/heads/feature/vat", "push", "ignored"),  # work in progress: its merge or deploy files
        ("refs/heads/release/1.2", "push", "ignored"),
    ],
)
def test_push_by_branch_with_the_default_keys(ref: str, kind: str, expected: Any) -> None:
    result = _kind(_event(git.GITHUB, kind, github_push(ref)))
    if expected == "ignored":
        assert isinstance(result, git.Ignored)
    else:
        assert result == expected


def test_a_hotfix_merged_into_main_stays_an_emergency() -> None:
    e = _event(git.GITHUB, "pull_request", github_pull_request(head="hotfix/INC-2041", base="main"))
    assert git.deciding(e) == ("hotfix/INC-2041", "GIT_HOTFIX_CATEGORY")
    assert _kind(e) == (ChangeType.EMERGENCY, "deployment")


def test_a_feature_merged_into_develop_is_develops_and_a_feature_deploy_is_the_features() -> None:
    merged = _event(
        git.GITLAB, "Merge Request Hook", gitlab_merge_request(source="feature/x", target="develop")
    )
    assert git.deciding(merged) == ("develop", "GIT_DEVELOP_CATEGORY")
    deploy = _event(git.GITHUB, "deployment", github_deployment(ref="feature/x", environment="preview-x"))
    assert _kind(deploy) == (ChangeType.NORMAL, "deployment")
    assert git.request(deploy, (ChangeType.NORMAL, "deployment"), ["web"])["impact"] == "medium"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("normal", (ChangeType.NORMAL, "deployment")),
        ("emergency", (ChangeType.EMERGENCY, "deployment")),
        ("deployment", (ChangeType.NORMAL, "deployment")),
        ("cicd", (ChangeType.NORMAL, "cicd")),
        ("none", None),
    ],
)
def test_a_value_is_a_type_a_category_or_none(value: str, expected: Any) -> None:
    assert git.classify(value, CATEGORIES, "GIT_MAIN_CATEGORY") == expected


@pytest.mark.parametrize("value", ["standard", "hotfix", "Deployment"])
def test_other_values_are_configuration_errors(value: str) -> None:
    with pytest.raises(ConfigError, match="GIT_DEVELOP_CATEGORY"):
        git.classify(value, CATEGORIES, "GIT_DEVELOP_CATEGORY")


# -- repositories, the request ---------------------------------------------------------------


def test_repository_table() -> None:
    table = {"Octo-Org/Web": ["web", "checkout", "web"], "mike/diaspora": []}
    assert git.services_for("octo-org/web", table) == ["web", "checkout"]  # letter case, duplicates
    assert git.services_for("mike/diaspora", table) == []
    assert git.services_for("group/sub/payments-api", table) == ["payments-api"]  # unmapped: its own name
    with pytest.raises(ConfigError, match="repositories"):
        git.services_for("x/y", {"x/y": "web"})
    with pytest.raises(ConfigError, match="repositories"):
        git.services_for("x/y", {"x/y": ["we\nb"]})


def test_the_request_passes_the_field_table() -> None:
    e = _event(git.GITHUB, "push", github_push("refs/heads/hotfix/INC-2041"))
    fields = git.request(e, (ChangeType.EMERGENCY, "deployment"), ["web"])
    checked = ChangeRequest.of(fields)
    assert checked.type is ChangeType.EMERGENCY and checked.urgency.value == "high"
    assert checked.requested_by == "github:octo-org/web" and checked.affected_services == ["web"]


HOSTILE = [
    "$(rm -rf /) `id` ${HOME}; DROP TABLE changes;--",
    "\x1b[2J\x1b[31mred\x07 \x00nul\r\rcarriage",
    "<script>alert(1)</script> \u202egnp.exe \u200b",
    "🚀" * 300,
    "x" * 25_000,
    "",
    "\n\n   \n",
]


@pytest.mark.parametrize("message", HOSTILE)
def test_hostile_commit_text_is_bounded_and_kept_as_text(message: str) -> None:
    payload = github_push(messages=["first", message])
    e = _event(git.GITHUB, "push", payload)
    fields = git.request(e, (ChangeType.NORMAL, "deployment"), ["web"])
    checked = ChangeRequest.of(fields)  # never refused for its text: bounded, one line for the title
    assert 1 <= len(checked.title) <= v.TITLE_MAX and "\n" not in checked.title
    assert len(checked.description) <= v.DESCRIPTION_MAX
    if message.startswith("$("):
        assert message in checked.title and message in checked.description  # just text


def test_title_and_description_are_cut_with_a_mark() -> None:
    e = _event(git.GITHUB, "pull_request", {**github_pull_request()})
    long = e.copy_with(subject="s" * 500, text="t" * 30_000)
    assert git.title(long).endswith("…") and len(git.title(long)) == v.TITLE_MAX
    assert git.description(long).endswith("…") and len(git.description(long)) == v.DESCRIPTION_MAX


# -- signatures ------------------------------------------------------------------------------


def test_github_signature_as_github_documents_it() -> None:
    # docs.github.com "Validating webhook deliveries": this secret and body give this signature.
    body = b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert github_signature(body) == expected
    assert git.github_signed(GITHUB_SECRET, body, expected)
    assert not git.github_signed(GITHUB_SECRET, body + b" ", expected)
    assert not git.github_signed("another secret", body, expected)
    assert not git.github_signed(GITHUB_SECRET, body, expected.removeprefix("sha256="))
    assert not git.github_signed(GITHUB_SECRET, body, None)
    assert not git.github_signed("", body, "sha256=")
    assert not git.github_signed(GITHUB_SECRET, body, "sha256=ü" + expected[8:])


def test_gitlab_token() -> None:
    assert git.gitlab_signed(GITLAB_TOKEN, GITLAB_TOKEN)
    assert not git.gitlab_signed(GITLAB_TOKEN, GITLAB_TOKEN + "x")
    assert not git.gitlab_signed(GITLAB_TOKEN, None)
    assert not git.gitlab_signed("", "")
    assert not git.gitlab_signed(GITLAB_TOKEN, "é")
