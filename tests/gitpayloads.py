"""Webhook payloads in the shapes GitHub and GitLab document (docs.github.com "Webhook events and
payloads", docs.gitlab.com "Webhook events"), trimmed of fields nothing reads only where marked,
and the signatures each provider computes. Shared by the domain and the API tests."""

from __future__ import annotations

import copy
import hashlib
import hmac
from typing import Any

GITHUB_SECRET = "It's a Secret to Everybody"
GITLAB_TOKEN = "glwt-8f3c2a9d41b7e6f0"
HEAD = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
BEFORE = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"


def github_signature(body: bytes, secret: str = GITHUB_SECRET) -> str:
    """X-Hub-Signature-256 as GitHub computes it: HMAC-SHA256 of the raw body, hex, prefixed."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


_OWNER = {
    "name": "octo-org",
    "login": "octo-org",
    "id": 6811672,
    "node_id": "MDEyOk9yZ2FuaXphdGlvbjY4MTE2NzI=",
    "type": "Organization",
    "site_admin": False,
}
_REPOSITORY: dict[str, Any] = {
    "id": 186853002,
    "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=",
    "name": "web",
    "full_name": "octo-org/web",
    "private": True,
    "owner": _OWNER,
    "html_url": "https://github.com/octo-org/web",
    "description": "The shop's storefront",
    "fork": False,
    "url": "https://github.com/octo-org/web",
    "default_branch": "main",
    "master_branch": "main",
    "organization": "octo-org",
}
_SENDER = {"login": "octocat", "id": 21031067, "type": "User", "site_admin": False}


def _gh_commit(sha: str, message: str, name: str, username: str, ts: str) -> dict[str, Any]:
    return {
        "id": sha,
        "tree_id": "f9d2a07e9488b91af2641b26b9407fe22a451433",
        "distinct": True,
        "message": message,
        "timestamp": ts,
        "url": f"https://github.com/octo-org/web/commit/{sha}",
        "author": {"name": name, "email": f"{username}@example.com", "username": username},
        "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
        "added": [],
        "removed": [],
        "modified": ["src/checkout.py"],
    }


def github_push(ref: str = "refs/heads/main", messages: list[str] | None = None) -> dict[str, Any]:
    """A push of three commits (oldest first, as GitHub lists them; `head_commit` the last)."""
    messages = messages or [
        "Add rate limiting to the checkout endpoint",
        "Fix rounding of VAT in the basket total\n\nThe total was computed in floats.",
        "Bump payment client to 4.2.1",
    ]
    shas = [f"{i:x}" * 40 for i in range(1, len(messages))] + [HEAD]
    commits = [
        _gh_commit(sha, msg, "Mona Lisa", "monalisa", f"2026-03-02T10:1{i}:00+01:00")
        for i, (sha, msg) in enumerate(zip(shas, messages, strict=True))
    ]
    return {
        "ref": ref,
        "before": BEFORE,
        "after": HEAD,
        "repository": copy.deepcopy(_REPOSITORY),
        "pusher": {"name": "monalisa", "email": "monalisa@example.com"},
        "organization": {"login": "octo-org", "id": 6811672},
        "sender": _SENDER,
        "created": False,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"https://github.com/octo-org/web/compare/{BEFORE[:12]}...{HEAD[:12]}",
        "commits": commits,
        "head_commit": commits[-1],
    }


def github_pull_request(
    *, merged: bool = True, base: str = "main", head: str = "feature/basket-vat", action: str = "closed"
) -> dict[str, Any]:
    """`pull_request` with action closed (merged or not)."""
    return {
        "action": action,
        "number": 1347,
        "pull_request": {
            "url": "https://api.github.com/repos/octo-org/web/pulls/1347",
            "id": 1798163453,
            "html_url": "https://github.com/octo-org/web/pull/1347",
            "number": 1347,
            "state": "closed",
            "locked": False,
            "title": "Compute VAT in decimals",
            "user": {"login": "monalisa", "id": 2},
            "body": "Floats lost a cent on large baskets.\r\n\r\nFixes #1290.",
            "created_at": "2026-03-01T09:00:00Z",
            "updated_at": "2026-03-02T11:00:00Z",
            "closed_at": "2026-03-02T11:00:00Z",
            "merged_at": "2026-03-02T11:00:00Z" if merged else None,
            "merge_commit_sha": HEAD,
            "head": {"label": f"octo-org:{head}", "ref": head, "sha": BEFORE, "repo": _REPOSITORY},
            "base": {"label": f"octo-org:{base}", "ref": base, "sha": "a" * 40, "repo": _REPOSITORY},
            "merged": merged,
            "merged_by": {"login": "hubot", "id": 3} if merged else None,
            "comments": 2,
            "commits": 3,
            "additions": 40,
            "deletions": 7,
            "changed_files": 2,
        },
        "repository": copy.deepcopy(_REPOSITORY),
        "organization": {"login": "octo-org", "id": 6811672},
        "sender": _SENDER,
    }


def github_deployment(ref: str = "main", environment: str = "production") -> dict[str, Any]:
    return {
        "action": "created",
        "deployment": {
            "url": "https://api.github.com/repos/octo-org/web/deployments/1418025034",
            "id": 1418025034,
            "node_id": "DE_kwDOCyIeSs5UhrPK",
            "task": "deploy",
            "original_environment": environment,
            "environment": environment,
            "description": "Release 2026.03.2",
            "created_at": "2026-03-02T12:00:00Z",
            "updated_at": "2026-03-02T12:00:00Z",
            "statuses_url": "https://api.github.com/repos/octo-org/web/deployments/1418025034/statuses",
            "repository_url": "https://api.github.com/repos/octo-org/web",
            "creator": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"},
            "sha": HEAD,
            "ref": ref,
            "payload": {},
            "transient_environment": False,
            "production_environment": environment == "production",
        },
        "workflow": None,
        "workflow_run": None,
        "repository": copy.deepcopy(_REPOSITORY),
        "organization": {"login": "octo-org", "id": 6811672},
        "sender": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"},
    }


_PROJECT: dict[str, Any] = {
    "id": 15,
    "name": "Diaspora",
    "description": "",
    "web_url": "http://example.com/mike/diaspora",
    "avatar_url": None,
    "git_ssh_url": "git@example.com:mike/diaspora.git",
    "git_http_url": "http://example.com/mike/diaspora.git",
    "namespace": "Mike",
    "visibility_level": 0,
    "path_with_namespace": "mike/diaspora",
    "default_branch": "master",
    "homepage": "http://example.com/mike/diaspora",
    "url": "git@example.com:mike/diaspora.git",
    "ssh_url": "git@example.com:mike/diaspora.git",
    "http_url": "http://example.com/mike/diaspora.git",
}


def gitlab_push(ref: str = "refs/heads/master") -> dict[str, Any]:
    """The documented push: two commits (oldest first), four in total."""
    return {
        "object_kind": "push",
        "event_name": "push",
        "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
        "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "ref": ref,
        "ref_protected": True,
        "checkout_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "message": "Hello World",
        "user_id": 4,
        "user_name": "John Smith",
        "user_username": "jsmith",
        "user_email": "john@example.com",
        "user_avatar": "https://s.gravatar.com/avatar/d4c74594d841139328695756648b6bd6?s=8://s.gravatar.com/avatar/d4c74594d841139328695756648b6bd6?s=80",
        "project_id": 15,
        "project": copy.deepcopy(_PROJECT),
        "commits": [
            {
                "id": "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327",
                "message": "Update Catalan translation to e38cb41.\n\n"
                "See https://gitlab.com/gitlab-org/gitlab for more information",
                "title": "Update Catalan translation to e38cb41.",
                "timestamp": "2011-12-12T14:27:31+02:00",
                "url": "http://example.com/mike/diaspora/commit/b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327",
                "author": {"name": "Jordi Mallach", "email": "jordi@softcatala.org"},
                "added": ["CHANGELOG"],
                "modified": ["app/controller/application.rb"],
                "removed": [],
            },
            {
                "id": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                "message": "fixed readme",
                "title": "fixed readme",
                "timestamp": "2012-01-03T23:36:29+02:00",
                "url": "http://example.com/mike/diaspora/commit/da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                "author": {"name": "GitLab dev user", "email": "gitlabdev@dv6700.(none)"},
                "added": ["CHANGELOG"],
                "modified": ["app/controller/application.rb"],
                "removed": [],
            },
        ],
        "total_commits_count": 4,
        "repository": {
            "name": "Diaspora",
            "url": "git@example.com:mike/diaspora.git",
            "description": "",
            "homepage": "http://example.com/mike/diaspora",
            "git_http_url": "http://example.com/mike/diaspora.git",
            "git_ssh_url": "git@example.com:mike/diaspora.git",
            "visibility_level": 0,
        },
    }


def gitlab_merge_request(
    *, action: str = "merge", source: str = "ms-viewport", target: str = "master"
) -> dict[str, Any]:
    """A Merge Request Hook; `action` merge when it was merged."""
    return {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": {
            "id": 1,
            "name": "Administrator",
            "username": "root",
            "avatar_url": "http://www.gravatar.com/avatar/e64c7d89f26bd1972efa854d13d7dd61?s=40&d=identicon",
            "email": "admin@example.com",
        },
        "project": copy.deepcopy(_PROJECT),
        "repository": {
            "name": "Diaspora",
            "url": "git@example.com:mike/diaspora.git",
            "description": "",
            "homepage": "http://example.com/mike/diaspora",
        },
        "object_attributes": {
            "id": 99,
            "iid": 1,
            "target_branch": target,
            "source_branch": source,
            "source_project_id": 15,
            "author_id": 51,
            "assignee_ids": [6],
            "title": "MS-Viewport",
            "created_at": "2013-12-03T17:23:34Z",
            "updated_at": "2013-12-03T17:23:34Z",
            "state": "merged" if action == "merge" else "opened",
            "merge_status": "can_be_merged",
            "target_project_id": 15,
            "description": "Set the viewport meta tag for mobile browsers",
            "merge_commit_sha": "f3c5ab6c4ae8d1f9e2d2a1b0c9e8f7a6b5c4d3e2",
            "source": _PROJECT,
            "target": _PROJECT,
            "last_commit": {
                "id": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                "message": "fixed readme",
                "title": "Update file README.md",
                "timestamp": "2012-01-03T23:36:29+02:00",
                "url": "http://example.com/awesome_space/awesome_project/commits/da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                "author": {"name": "GitLab dev user", "email": "gitlabdev@dv6700.(none)"},
            },
            "work_in_progress": False,
            "url": "http://example.com/diaspora/merge_requests/1",
            "action": action,
        },
        "labels": [],
        "changes": {},
    }


def gitlab_deployment(status: str = "running", environment: str = "staging") -> dict[str, Any]:
    """The documented Deployment Hook (no ref: the project's default branch is deployed)."""
    return {
        "object_kind": "deployment",
        "status": status,
        "status_changed_at": "2021-04-28 21:50:00 +0200",
        "deployment_id": 15,
        "deployable_id": 796,
        "deployable_url": "http://10.126.0.2:3000/root/test-deployment-webhooks/-/jobs/796",
        "environment": environment,
        "environment_tier": environment,
        "environment_slug": environment,
        "environment_external_url": f"https://{environment}.example.com",
        "project": {
            "id": 30,
            "name": "test-deployment-webhooks",
            "description": "",
            "web_url": "http://10.126.0.2:3000/root/test-deployment-webhooks",
            "avatar_url": None,
            "git_ssh_url": "ssh://vlad@10.126.0.2:2222/root/test-deployment-webhooks.git",
            "git_http_url": "http://10.126.0.2:3000/root/test-deployment-webhooks.git",
            "namespace": "Administrator",
            "visibility_level": 0,
            "path_with_namespace": "root/test-deployment-webhooks",
            "default_branch": "master",
            "ci_config_path": "",
            "homepage": "http://10.126.0.2:3000/root/test-deployment-webhooks",
            "url": "ssh://vlad@10.126.0.2:2222/root/test-deployment-webhooks.git",
            "ssh_url": "ssh://vlad@10.126.0.2:2222/root/test-deployment-webhooks.git",
            "http_url": "http://10.126.0.2:3000/root/test-deployment-webhooks.git",
        },
        "short_sha": "279484c0",
        "user": {
            "id": 1,
            "name": "Administrator",
            "username": "root",
            "avatar_url": "https://www.gravatar.com/avatar/e64c7d89f26bd1972efa854d13d7dd61?s=80&d=identicon",
            "email": "admin@example.com",
        },
        "user_url": "http://10.126.0.2:3000/root",
        "commit_url": "http://10.126.0.2:3000/root/test-deployment-webhooks/-/commit/279484c09fbe69ededfced8c1bb6e6d24616b468",
        "commit_title": "Add new file",
    }
