"""Settings from the environment and `cortex-change.toml` (environment wins), validated (SPEC §9)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

from .domain.errors import ConfigError
from .domain.policy import DEFAULT_CATEGORY_WEIGHTS, Policy
from .domain.values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final

Parser = Callable[[str, str], "Any"]
# A boolean key takes exactly these spellings, in any letter case (not " true", not "y").
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
BOOLEANS = "true/false, yes/no, on/off or 1/0 (any letter case)"


def _bool(key: str, raw: str) -> bool:
    low = raw.lower()
    if low in TRUE:
        return True
    if low in FALSE:
        return False
    raise ConfigError(key, f"{raw!r} is not a boolean; use {BOOLEANS}")


def _int(lo: int, hi: int) -> Parser:
    def parse(key: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(key, f"{raw!r} is not a whole number ({lo}–{hi})") from None
        if not lo <= value <= hi:
            raise ConfigError(key, f"{value} is out of range ({lo}–{hi})")
        return value

    return parse


def _names(key: str, raw: str) -> tuple[str, ...]:
    items = tuple(x.strip() for x in raw.split(",") if x.strip())
    for item in items:
        if re.search(r"[\x00-\x1f\x7f]", item):
            raise ConfigError(key, "names must not contain control characters")
    return items


def _role(key: str, raw: str) -> tuple[str, ...]:
    """The members of a role the rules need: at least one, or nobody could approve or act in it."""
    members = _names(key, raw)
    if not members:
        raise ConfigError(key, "names nobody: list at least one identity (comma-separated)")
    return members


def _text(key: str, raw: str) -> str:
    return raw


def _url(key: str, raw: str) -> str:
    if raw and not re.match(r"^(https?|smtp|smtps)://\S+$|^[\w.-]+(:\d+)?$", raw):
        raise ConfigError(key, f"{raw!r} is not a URL or host[:port]")
    return raw


def _location(key: str, raw: str) -> str:
    """A file path or a postgresql:// URL; any other scheme, or a URL that does not parse, is refused."""
    if "://" not in raw:
        return raw
    if not raw.startswith(("postgresql://", "postgres://")):
        from .redaction import redact_url

        raise ConfigError(key, f"{redact_url(raw)!r} is neither a file path nor a postgresql:// URL")
    from urllib.parse import urlsplit

    try:
        urlsplit(raw)  # an unclosed [ raises; libpq judges the rest (hosts lists, ports) at connect
    except ValueError:
        from .redaction import redact_url

        raise ConfigError(key, f"{redact_url(raw)!r} is not a well-formed postgresql:// URL") from None
    return raw


CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")


def _cron(key: str, raw: str) -> str:
    fields = raw.split()
    if len(fields) != 5 or not all(CRON_FIELD.match(f) for f in fields):
        raise ConfigError(key, f"{raw!r} is not a 5-field cron expression (e.g. '0 14 * * 4')")
    return raw


def _git(key: str, raw: str) -> str:
    """A GIT_*_CATEGORY value: a word; what it names (type, category, none) is checked against the
    categories in `_check_consistency`."""
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,39}", raw):
        raise ConfigError(key, f"{raw!r} is not a change type, a category or none")
    return raw


def _s3_url(key: str, raw: str) -> str:
    """s3://bucket[/prefix] (witness/s3.py's `location` reads it the same way), or empty."""
    if raw and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?", raw):
        raise ConfigError(key, f"{raw[:80]!r} is not s3://bucket/prefix")
    return raw


def _choice(*allowed: str) -> Parser:
    def parse(key: str, raw: str) -> str:
        if raw not in allowed:
            raise ConfigError(key, f"{raw!r} is not allowed; allowed: {', '.join(allowed)}")
        return raw

    return parse


class Key(Frozen):
    __slots__ = ("default", "name", "parse", "pending")

    def __init__(self, name: str, default: str, parse: Parser, pending: str | None = None) -> None:
        self.name: Final = name
        self.default: Final = default
        self.parse: Final = parse
        # None: in effect. Otherwise why it is not yet (the feature is planned).
        self.pending: Final = pending


HOURS = 3600

KEYS: list[Key] = [
    Key("CHANGE_MGMT_ENABLED", "true", _bool),
    Key("REQUIRE_CHANGE_APPROVAL", "true", _bool),
    Key("AUTO_APPROVE_LOW_RISK", "true", _bool),
    Key("CAB_MEETING_SCHEDULE", "0 14 * * 4", _cron),
    Key("CAB_MEMBERS", "tech-lead,security-lead,ops-lead,product-lead", _role),
    Key("CAB_MIN_APPROVALS", "2", _int(1, 50)),
    Key("ECAB_MEMBERS", "tech-lead-oncall,security-oncall", _role),
    Key("TECH_LEADS", "tech-lead,coordinator-master", _role),
    Key("CISO_MEMBERS", "ciso", _role),
    Key("CTO_MEMBERS", "cto", _role),
    Key("CHANGE_MANAGERS", "change-manager", _role),
    Key("IMPLEMENTERS", "cortex-deployer", _role),
    Key("ADMINS", "", _names),  # may be empty: then only the local CLI manages tokens
    Key("RISK_THRESHOLD_LOW", "30", _int(0, 100)),
    Key("RISK_THRESHOLD_MEDIUM", "60", _int(0, 100)),
    Key("RISK_THRESHOLD_HIGH", "80", _int(0, 100)),
    Key("AUTO_APPROVE_THRESHOLD", "25", _int(0, 100)),
    Key("HISTORY_WINDOW_DAYS", "90", _int(1, 3650)),
    Key("HISTORY_MIN_SAMPLES", "5", _int(1, 10_000)),
    Key("TECH_LEAD_APPROVAL_TIMEOUT", "14400", _int(1, 365 * 24 * HOURS)),
    Key("CAB_APPROVAL_TIMEOUT", "604800", _int(1, 365 * 24 * HOURS)),
    Key("AUTO_REJECT_ON_TIMEOUT", "false", _bool),
    Key("AUTO_IMPLEMENT", "true", _bool),
    Key("IMPLEMENTATION_DELAY", "300", _int(0, 30 * 24 * HOURS)),
    Key("AUTO_ROLLBACK_ENABLED", "true", _bool),
    Key("ROLLBACK_TIMEOUT", "300", _int(1, 24 * HOURS)),
    Key("VALIDATION_PERIOD", "1800", _int(0, 30 * 24 * HOURS)),
    Key("HEALTH_CHECK_INTERVAL", "60", _int(1, 24 * HOURS)),
    Key("ERROR_RATE_THRESHOLD", "5", _int(0, 100)),
    Key("LATENCY_THRESHOLD", "200", _int(1, 10_000)),
    Key("VALIDATION_FAILURES_TO_TRIP", "3", _int(1, 1000)),
    Key("PROMETHEUS_URL", "", _url),
    Key("LEASE_TTL", "60", _int(5, 24 * HOURS)),
    Key("PORTAL_SESSION_TTL", "28800", _int(60, 30 * 24 * HOURS)),  # a portal sign-in lasts 8 hours
    Key("STEP_TIMEOUT_MAX", "3600", _int(1, 24 * HOURS)),
    Key("PLAN_JSON_MAX", "100000", _int(1024, 1_000_000)),
    Key("RUNNER_ENV_PASSTHROUGH", "", _names),
    Key("PLAN_SECRETS", "", _names),
    Key("HTTP_STEP_ALLOWED_HOSTS", "", _names),
    Key("WORKER_POLL_INTERVAL", "5", _int(1, HOURS)),
    Key("SOC2_COMPLIANCE", "true", _bool),
    Key("HIPAA_COMPLIANCE", "false", _bool),
    Key("ISO27001_COMPLIANCE", "false", _bool),
    Key("SEGREGATION_OF_DUTIES", "true", _bool),
    Key("PHI_SERVICES", "", _names),
    Key("PHI_CIS", "", _names),
    Key("REQUIRE_DOCUMENTATION", "true", _bool),
    Key("REQUIRE_ROLLBACK_PLAN", "true", _bool),
    Key("SLACK_NOTIFICATIONS", "false", _bool),
    Key("SLACK_WEBHOOK_URL", "", _url),
    Key("SLACK_CHANNEL", "#cortex-changes", _text),
    Key("EMAIL_NOTIFICATIONS", "false", _bool),
    Key("EMAIL_SMTP_SERVER", "", _url),
    Key("EMAIL_FROM", "cortex-change-mgmt@example.com", _text),
    Key("EMAIL_DOMAIN", "", _text),
    Key("EMAIL_SMTP_STARTTLS", "false", _bool),
    Key("EMAIL_SMTP_USER", "", _text),
    Key("EMAIL_SMTP_PASSWORD", "", _text),
    Key("PAGERDUTY_ENABLED", "false", _bool),
    Key("PAGERDUTY_API_KEY", "", _text),
    Key("PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com/v2/enqueue", _url),
    Key("WEBHOOK_URL", "", _url),
    Key("WEBHOOK_SECRET", "", _text),
    Key("OUTBOX_MAX_ATTEMPTS", "8", _int(1, 100)),
    Key("OUTBOX_RETRY_BASE", "30", _int(1, 24 * HOURS)),
    Key("CAB_AGENDA_LEAD", "86400", _int(0, 30 * 24 * HOURS)),
    Key("METRICS_ENABLED", "true", _bool),
    Key("METRICS_BACKEND", "prometheus", _choice("prometheus", "none")),
    Key("PROMETHEUS_PUSHGATEWAY", "http://prometheus-pushgateway:9091", _url),
    Key("METRICS_PUSH_INTERVAL", "60", _int(5, 24 * HOURS)),
    Key("AUDIT_LOGGING", "true", _bool),
    Key("AUDIT_RETENTION_DAYS", "90", _int(1, 36500)),
    # Signed audit checkpoints (docs/checkpoints.md): how often, with which key, to which witnesses.
    Key("AUDIT_CHECKPOINT_INTERVAL", "3600", _int(1, 30 * 24 * HOURS)),
    Key("AUDIT_CHECKPOINT_EVENTS", "1000", _int(1, 100_000_000)),
    Key("AUDIT_SIGNING_KEY", "", _text),  # a file path (mode 0600), or the PEM text itself
    Key("AUDIT_WITNESS_FILE", "", _text),
    Key("AUDIT_WITNESS_WEBHOOK", "", _url),
    # The RFC 3161 and S3 witnesses (witness/tsa.py, witness/s3.py; the `witness` extra).
    Key("AUDIT_TSA_URL", "", _url),
    Key("AUDIT_TSA_CA", "", _text),  # a PEM file of the CA certificates the TSA must chain to
    Key("AUDIT_WITNESS_S3", "", _s3_url),  # s3://bucket/prefix
    Key("AUDIT_WITNESS_S3_ENDPOINT", "", _url),  # an S3-compatible endpoint (MinIO, Ceph…)
    Key("STD_WORKER_RESTART_ENABLED", "true", _bool),
    Key("STD_WORKER_RESTART_MAX_FREQ", "3", _int(0, 1000)),
    Key("STD_AUTOSCALE_ENABLED", "true", _bool),
    Key("STD_AUTOSCALE_MIN_REPLICAS", "1", _int(0, 100_000)),
    Key("STD_AUTOSCALE_MAX_REPLICAS", "10", _int(0, 100_000)),
    Key("STD_SECURITY_PATCH_ENABLED", "true", _bool),
    Key(
        "STD_SECURITY_PATCH_MAX_SEVERITY",
        "high",
        _choice("low", "medium", "high", "critical"),
    ),
    Key("STD_CONFIG_UPDATE_ENABLED", "true", _bool),
    Key("STD_CONFIG_UPDATE_TOLERANCE", "20", _int(0, 100)),
    Key("EMERGENCY_CHANGE_ENABLED", "true", _bool),
    Key("EMERGENCY_AUTO_APPROVE", "true", _bool),
    Key("EMERGENCY_CAB_REVIEW_SLA", "24", _int(1, 24 * 365)),
    Key("PIR_SLA", "5", _int(1, 365)),  # days a post-implementation review is due in (docs/pir.md)
    # Git and CI webhooks (docs/devops.md): POST /hooks/github and /hooks/gitlab file changes.
    Key("CICD_AUTO_CHANGE", "true", _bool),
    Key("GIT_MAIN_CATEGORY", "deployment", _git),
    Key("GIT_DEVELOP_CATEGORY", "deployment", _git),
    Key("GIT_HOTFIX_CATEGORY", "emergency", _git),
    Key("GIT_FEATURE_CATEGORY", "normal", _git),
    Key("GITHUB_WEBHOOK_SECRET", "", _text),
    Key("GITLAB_WEBHOOK_TOKEN", "", _text),
    Key("K8S_EVENT_INTEGRATION", "true", _bool),
    Key("CMDB_ENABLED", "true", _bool),
    Key("AI_RISK_ASSESSMENT", "true", _bool),
    Key("ML_PREDICTION", "true", _bool),
    Key("RISK_MODEL", "advisory", _choice("rules", "advisory", "blend")),
    Key("ML_MIN_SAMPLES", "200", _int(20, 10_000_000)),
    Key("ML_BLEND_THRESHOLD", "50", _int(1, 99)),
    Key("AUTO_DEPENDENCY_ANALYSIS", "true", _bool),
    Key("CMDB_MAX_DEPTH", "10", _int(1, 100)),
    Key("CMDB_UNKNOWN_CI", "warn", _choice("warn", "refuse")),
    Key("FREEZE_POLICY", "refuse", _choice("refuse", "cab")),
    Key("AGENT_HUMAN_APPROVAL_LEVEL", "medium", _choice("low", "medium", "high", "critical")),
    Key("RATE_LIMIT_PER_MINUTE", "600", _int(0, 1_000_000)),
    Key("AUTO_ROLLBACK_DECISION", "true", _bool),
    Key("CANARY_ALPHA", "5", _int(1, 50)),  # % (one-sided significance level)
    Key("CANARY_TOLERANCE", "20", _int(0, 10_000)),  # % of the baseline median
    Key("CANARY_MIN_SAMPLES", "10", _int(3, 10_000)),
    Key("SELF_HEALING", "true", _bool),
    Key("CORTEX_CHANGE_DB", "", _location),
]
KEYS_BY_NAME = {k.name: k for k in KEYS}
NOTES = {
    "AI_RISK_ASSESSMENT": "false: the learned risk model is off, the rules alone assess (docs/risk-model.md)",
    "ML_PREDICTION": "with a model (risk train), each assessment records P(failure) (docs/risk-model.md)",
    "RISK_MODEL": "rules: no prediction; advisory: recorded and shown; blend: it may raise a route",
    "ML_BLEND_THRESHOLD": "percent: RISK_MODEL=blend raises the route at or above this P(failure)",
    "CMDB_ENABLED": "false: the CMDB's commands still work; assessments ignore it (docs/cmdb.md)",
    "AUTO_DEPENDENCY_ANALYSIS": "a change's services and CIs are expanded to their blast radius for risk",
    "AUDIT_LOGGING": "the audit trail is always written; false is recorded but cannot disable it",
    "CHANGE_MGMT_ENABLED": "false: everything is recorded and audited, nothing is approved automatically, "
    "no deploy is gated; every command, API answer and portal page says so (docs/devops.md)",
    "CICD_AUTO_CHANGE": "POST /hooks/github and /hooks/gitlab file a change per push, merge, deployment",
    "GIT_MAIN_CATEGORY": "main/master: a change type (normal, emergency), a category or none (devops.md)",
    "GIT_DEVELOP_CATEGORY": "develop: a change type (normal, emergency), a category, or none",
    "GIT_HOTFIX_CATEGORY": "hotfix/*: a change type (normal, emergency), a category, or none",
    "GIT_FEATURE_CATEGORY": "feature/* merges and deployments (a push files nothing): type, category or none",
    "GITHUB_WEBHOOK_SECRET": "the GitHub webhook's secret (X-Hub-Signature-256); empty: /hooks/github is 401",
    "GITLAB_WEBHOOK_TOKEN": "the GitLab webhook's secret token (X-Gitlab-Token); empty: /hooks/gitlab is 401",
    "PIR_SLA": "days: a failed, rolled-back or incident-linked change's review is due (docs/pir.md)",
    "AUTO_ROLLBACK_DECISION": "validation also compares samples after the change with before it "
    "(Mann-Whitney U); inconclusive extends once, then asks a person (docs/canary.md)",
    "CANARY_ALPHA": "percent: the statistical decision's significance level (docs/canary.md)",
    "CANARY_TOLERANCE": "percent of the baseline median: a smaller harmful shift never fails a change",
    "CANARY_MIN_SAMPLES": "samples needed on each side (before, after) or the decision is inconclusive",
    "AUDIT_SIGNING_KEY": "the checkpoints' Ed25519 key: a file (mode 0600) or PEM text (docs/checkpoints.md)",
    "AUDIT_WITNESS_FILE": "an append-only file each signed checkpoint is added to, one JSON line each",
    "AUDIT_WITNESS_WEBHOOK": "each signed checkpoint is POSTed here (signed with WEBHOOK_SECRET too)",
    "AUDIT_TSA_URL": "an RFC 3161 timestamp authority each checkpoint is stamped by; its token is kept "
    "(http(s), credentials in the URL as Basic auth; the `witness` extra)",
    "AUDIT_TSA_CA": "a PEM file of CA certificates: the TSA's tokens must chain to one (publishing, verify)",
    "AUDIT_WITNESS_S3": "s3://bucket/prefix: each checkpoint an object <length>-<head>.json, never "
    "overwritten; AWS credentials from the standard AWS environment/config only",
    "AUDIT_WITNESS_S3_ENDPOINT": "an S3-compatible server's URL (MinIO, Ceph…); empty: AWS S3",
    "K8S_EVENT_INTEGRATION": "k8s watch: cluster events as observations, crash loops propose a restart "
    "(docs/self-healing.md); false: the command refuses",
    "SELF_HEALING": "POST /hooks/alertmanager: alerts matching [remediations.*] file standard changes "
    "(docs/self-healing.md); false: the hook refuses (403)",
    "PHI_SERVICES": "a change touching one is PHI-affecting (compliance report --framework hipaa)",
    "PHI_CIS": "a change touching one is PHI-affecting (compliance report --framework hipaa)",
}
# Tables of the TOML file that are data, not keys: standard models, integration templates,
# runbooks (versioned step templates), services (validation health checks), addresses
# (identity -> e-mail address), repositories (a Git repository -> its services: docs/devops.md),
# remediations (Alertmanager alert labels -> a standard model and runbook: docs/self-healing.md).
DATA_TABLES = (
    "models",
    "integrations",
    "runbooks",
    "services",
    "addresses",
    "windows",
    "repositories",
    "remediations",
)
SECRET_KEYS = {
    "PAGERDUTY_API_KEY",
    "WEBHOOK_SECRET",
    "SLACK_WEBHOOK_URL",
    "EMAIL_SMTP_PASSWORD",
    "GITHUB_WEBHOOK_SECRET",
    "GITLAB_WEBHOOK_TOKEN",
    "AUDIT_SIGNING_KEY",  # a path is shown masked too: the PEM text may be given in its place
}


# URLs that may carry credentials (user:password@): shown with them masked.
URL_CREDENTIAL_KEYS = {"AUDIT_TSA_URL", "AUDIT_WITNESS_S3_ENDPOINT"}


class Setting(Frozen):
    __slots__ = ("source", "value")

    def __init__(self, value: Any, source: str) -> None:
        self.value: Final = value
        self.source: Final = source  # "default" | "environment" | the TOML file's path


class Settings(Frozen):
    __slots__ = ("category_weights", "extra", "values")

    def __init__(
        self,
        values: dict[str, Setting],
        category_weights: dict[str, int],
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.values: Final = values
        self.category_weights: Final = category_weights
        # Data tables of the TOML file: [models.*] and [integrations.*] (read by catalog/).
        self.extra: Final = {} if extra is None else extra

    def __getitem__(self, key: str) -> Any:
        return self.values[key].value

    def policy(self) -> Policy:
        """The rules' view of these settings."""
        v = self.__getitem__
        return Policy(
            risk_threshold_low=v("RISK_THRESHOLD_LOW"),
            risk_threshold_medium=v("RISK_THRESHOLD_MEDIUM"),
            risk_threshold_high=v("RISK_THRESHOLD_HIGH"),
            auto_approve_low_risk=v("AUTO_APPROVE_LOW_RISK"),
            auto_approve_threshold=v("AUTO_APPROVE_THRESHOLD"),
            require_change_approval=v("REQUIRE_CHANGE_APPROVAL"),
            tech_leads=frozenset(v("TECH_LEADS")),
            cab_members=frozenset(v("CAB_MEMBERS")),
            cab_min_approvals=v("CAB_MIN_APPROVALS"),
            ecab_members=frozenset(v("ECAB_MEMBERS")),
            ciso_members=frozenset(v("CISO_MEMBERS")),
            cto_members=frozenset(v("CTO_MEMBERS")),
            change_managers=frozenset(v("CHANGE_MANAGERS")),
            implementers=frozenset(v("IMPLEMENTERS")),
            admins=frozenset(v("ADMINS")),
            segregation_of_duties=v("SEGREGATION_OF_DUTIES"),
            require_documentation=v("REQUIRE_DOCUMENTATION"),
            require_rollback_plan=v("REQUIRE_ROLLBACK_PLAN"),
            emergency_enabled=v("EMERGENCY_CHANGE_ENABLED"),
            emergency_auto_approve=v("EMERGENCY_AUTO_APPROVE"),
            emergency_review_sla_hours=v("EMERGENCY_CAB_REVIEW_SLA"),
            frameworks=tuple(
                f
                for f, k in (
                    ("soc2", "SOC2_COMPLIANCE"),
                    ("hipaa", "HIPAA_COMPLIANCE"),
                    ("iso27001", "ISO27001_COMPLIANCE"),
                )
                if v(k)
            ),
            history_window_days=v("HISTORY_WINDOW_DAYS"),
            history_min_samples=v("HISTORY_MIN_SAMPLES"),
            category_weights=dict(self.category_weights),
            agent_human_approval_level=v("AGENT_HUMAN_APPROVAL_LEVEL"),
            change_management=v("CHANGE_MGMT_ENABLED"),
        )

    def predicts(self) -> bool:
        """Whether assessments predict with the trained model: AI_RISK_ASSESSMENT and ML_PREDICTION
        on, RISK_MODEL not `rules` (features are recorded regardless)."""
        return bool(self["AI_RISK_ASSESSMENT"] and self["ML_PREDICTION"] and self["RISK_MODEL"] != "rules")

    def database(self) -> str:
        """Where the store lives: CORTEX_CHANGE_DB, or a file in the user's data directory."""
        db: str = self["CORTEX_CHANGE_DB"]
        if db:
            return db
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        return os.path.join(base, "cortex-change", "cortex-change.db")


def _toml_file(env: Mapping[str, str]) -> str | None:
    named = env.get("CORTEX_CHANGE_CONFIG")
    if named:
        if not os.path.isfile(named):
            raise ConfigError("CORTEX_CHANGE_CONFIG", f"{named!r} is not a readable file")
        return named
    local = "cortex-change.toml"
    return os.path.abspath(local) if os.path.isfile(local) else None


def _read_toml(path: str) -> dict[str, Any]:
    import tomllib

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), f"cannot be read as TOML: {exc}") from None


def _weights(table: Any, source: str) -> dict[str, int]:
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{source} [categories]", "must map category names to risk points 0–20")
    weights = {}
    for cat, points in table.items():
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,39}", cat):
            raise ConfigError(f"[categories] {cat}", "names are lowercase letters, digits, - or _")
        if not isinstance(points, int) or isinstance(points, bool) or not 0 <= points <= 20:
            raise ConfigError(f"[categories] {cat}", f"{points!r} is not a whole number 0–20")
        weights[cat] = points
    return weights


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every key; a bad value raises ConfigError naming the key."""
    env = os.environ if env is None else env
    raw: dict[str, tuple[str, str]] = {k.name: (k.default, "default") for k in KEYS}
    weights = dict(DEFAULT_CATEGORY_WEIGHTS)
    extra: dict[str, Any] = {}
    path = _toml_file(env)
    if path is not None:
        data = _read_toml(path)
        for key, value in data.items():
            if key == "categories":
                weights = _weights(value, str(path))
                continue
            if key in DATA_TABLES:
                if not isinstance(value, dict):
                    raise ConfigError(key, f"must be a TOML table (in {path})")
                extra[key] = value
                continue
            if key.upper() not in KEYS_BY_NAME:
                raise ConfigError(key, f"is not a configuration key (in {path})")
            text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            raw[key.upper()] = (text.lower() if isinstance(value, bool) else text, str(path))
    for k in KEYS:
        if k.name in env:
            raw[k.name] = (env[k.name], "environment")
    values = {k.name: Setting(k.parse(k.name, raw[k.name][0]), raw[k.name][1]) for k in KEYS}
    settings = Settings(values, weights, extra)
    _check_consistency(settings)
    return settings


def _check_consistency(s: Settings) -> None:
    db = s.values["CORTEX_CHANGE_DB"]
    if db.source != "default" and not db.value.strip():
        raise ConfigError(
            "CORTEX_CHANGE_DB",
            f"is set but empty ({db.source}): name a file or a postgresql:// URL, "
            "or unset it for the default location",
        )
    low, medium, high = s["RISK_THRESHOLD_LOW"], s["RISK_THRESHOLD_MEDIUM"], s["RISK_THRESHOLD_HIGH"]
    if not low < medium < high:
        raise ConfigError(
            "RISK_THRESHOLD_MEDIUM",
            f"thresholds must rise: RISK_THRESHOLD_LOW ({low}) < RISK_THRESHOLD_MEDIUM "
            f"({medium}) < RISK_THRESHOLD_HIGH ({high})",
        )
    if s["CAB_MIN_APPROVALS"] > len(s["CAB_MEMBERS"]):
        raise ConfigError(
            "CAB_MIN_APPROVALS",
            f"{s['CAB_MIN_APPROVALS']} exceeds the {len(s['CAB_MEMBERS'])} CAB_MEMBERS",
        )
    if s["STD_AUTOSCALE_MIN_REPLICAS"] > s["STD_AUTOSCALE_MAX_REPLICAS"]:
        raise ConfigError("STD_AUTOSCALE_MIN_REPLICAS", "must not exceed STD_AUTOSCALE_MAX_REPLICAS")
    _check_git(s)


def _check_git(s: Settings) -> None:
    """Each GIT_*_CATEGORY names a change type, a configured category or `none` (docs/devops.md);
    a type files `deployment` changes, so that category must exist then."""
    categories = s.category_weights
    for key in ("GIT_MAIN_CATEGORY", "GIT_DEVELOP_CATEGORY", "GIT_HOTFIX_CATEGORY", "GIT_FEATURE_CATEGORY"):
        value = s[key]
        if value in ("normal", "emergency") and "deployment" not in categories:
            raise ConfigError(key, f"{value!r} files deployment changes, and deployment is not a category")
        if value not in ("normal", "emergency", "none") and value not in categories:
            raise ConfigError(
                key,
                f"{value!r} is neither a change type (normal, emergency), none, nor a category "
                f"({', '.join(categories)})",
            )


def describe(settings: Settings) -> list[dict[str, Any]]:
    """Each key with its effective value, its source and whether it is in effect yet."""
    rows = []
    for key in KEYS:
        setting = settings.values[key.name]
        value = setting.value
        if key.name in SECRET_KEYS and value:
            value = "********"
        elif isinstance(value, tuple):
            value = ",".join(value)
        elif key.name == "CORTEX_CHANGE_DB":
            from .redaction import redact_url

            value = redact_url(value or settings.database())
        elif key.name in URL_CREDENTIAL_KEYS and value:
            from .redaction import redact_url

            value = redact_url(value)
        rows.append(
            {
                "key": key.name,
                "value": value,
                "source": setting.source,
                "in_effect": key.pending is None,
                "note": key.pending or NOTES.get(key.name, ""),
            }
        )
    return rows


# How the machinery runs, not what the rules decide: where messages go, how often workers poll.
OPERATIONAL_KEYS = {
    "RATE_LIMIT_PER_MINUTE",
    "CORTEX_CHANGE_DB",
    "PORTAL_SESSION_TTL",
    "WORKER_POLL_INTERVAL",
    "LEASE_TTL",
    "METRICS_PUSH_INTERVAL",
    "PROMETHEUS_PUSHGATEWAY",
    "PROMETHEUS_URL",
    "OUTBOX_MAX_ATTEMPTS",
    "OUTBOX_RETRY_BASE",
    "SLACK_WEBHOOK_URL",
    "SLACK_CHANNEL",
    "EMAIL_SMTP_SERVER",
    "EMAIL_FROM",
    "EMAIL_DOMAIN",
    "EMAIL_SMTP_STARTTLS",
    "EMAIL_SMTP_USER",
    "PAGERDUTY_EVENTS_URL",
    "WEBHOOK_URL",
    "AUDIT_CHECKPOINT_INTERVAL",
    "AUDIT_CHECKPOINT_EVENTS",
    "AUDIT_SIGNING_KEY",
    "AUDIT_WITNESS_FILE",
    "AUDIT_WITNESS_WEBHOOK",
    "AUDIT_TSA_URL",
    "AUDIT_TSA_CA",
    "AUDIT_WITNESS_S3",
    "AUDIT_WITNESS_S3_ENDPOINT",
}


def rules_snapshot(settings: Settings) -> dict[str, Any]:
    """The in-effect, non-secret values that decide outcomes (audited when they change)."""
    out: dict[str, Any] = {}
    for key in KEYS:
        if key.pending is None and key.name not in SECRET_KEYS | OPERATIONAL_KEYS:
            value = settings[key.name]
            out[key.name] = list(value) if isinstance(value, tuple) else value
    out["categories"] = dict(settings.category_weights)
    return out
