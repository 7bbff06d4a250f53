"""Elbia settings: every value is read from the environment here, and only here.

With no environment at all the service runs on embedded defaults that need no
server: SQLite, a Celery broker on a SQLite file (kombu's SQLAlchemy transport)
and the local-memory cache. ``DATABASE_URL`` and ``REDIS_URL`` switch the same
code to PostgreSQL and Redis. A bad value stops the process at start with a
message naming the variable.
"""

import base64
import hashlib
import os
from functools import partial
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from elbia.config import (
    code_storage,
    parse_allowed_hosts,
    parse_ami_map,
    parse_count,
    parse_fernet_keys,
    parse_rate,
    parse_seconds,
    parse_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()


def _read(name: str, parse, default):
    """Read one variable through ``parse``; a bad value fails with a clear message."""
    raw = env.str(name, default=None)
    if raw is None:
        return default
    try:
        return parse(raw)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"Environment variable {name}={raw!r} is invalid: {exc}") from None


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


TESTING = _read("ELBIA_TESTING", _bool, False)
# The local settings `make` writes (DEBUG=1, a generated SECRET_KEY; git-ignored). The environment wins over
# the file; the test suite never reads it (its settings come from `make test` alone).
DOTENV_PATH = BASE_DIR / ".env"
if DOTENV_PATH.exists() and not TESTING:
    environ.Env.read_env(DOTENV_PATH)

DEBUG = _read("DEBUG", _bool, False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured(
            "Environment variable SECRET_KEY is required when DEBUG is off "
            "(for local development, `make .env` writes DEBUG=1 and a generated key to .env)."
        )
    SECRET_KEY = "elbia-insecure-development-key-do-not-use-in-production"

# Keys encrypting secrets at rest (functions' environment values): comma-separated Fernet keys, the first
# encrypts and all decrypt (rotation). Without it, one key derived from SECRET_KEY (so changing SECRET_KEY
# then needs ELBIA_SECRETS_KEY set to the old derived key; see docs/functions.md).
_secrets_key = env.str("ELBIA_SECRETS_KEY", default="")
try:
    ELBIA_SECRETS_KEY = (
        parse_fernet_keys(_secrets_key)
        if _secrets_key
        else [base64.urlsafe_b64encode(hashlib.sha256(b"elbia-secrets-key:" + SECRET_KEY.encode()).digest()).decode()]
    )
except ValueError as exc:  # the message never echoes the value: it is a secret
    raise ImproperlyConfigured(f"Environment variable ELBIA_SECRETS_KEY is invalid: {exc}") from None

# Hosts (and ports) this service answers for; see elbia.hosts. ``host`` allows no port or 80/443, ``host:8443``
# that port too, ``host:*`` any port. The defaults serve local development and the test servers.
ELBIA_ALLOWED_HOSTS = _read(
    "ALLOWED_HOSTS", parse_allowed_hosts, parse_allowed_hosts("localhost:*,127.0.0.1:*,[::1]:*,testserver")
)
ALLOWED_HOSTS = [entry.host for entry in ELBIA_ALLOWED_HOSTS]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Elbia's own settings -------------------------------------------------------

# Requests per period for each API token (or client IP without a token).
ELBIA_RATE_LIMIT = _read("ELBIA_RATE_LIMIT", parse_rate, parse_rate("5000/hour"))
# Per client IP, each counted apart: OAuth token endpoint calls, dashboard logins, bad bearer tokens.
ELBIA_AUTH_RATE_LIMIT = _read("ELBIA_AUTH_RATE_LIMIT", parse_rate, parse_rate("60/minute"))
# Reverse proxies in front of the web processes; 0 ignores X-Forwarded-For (clients could forge it).
ELBIA_TRUSTED_PROXY_COUNT = _read("ELBIA_TRUSTED_PROXY_COUNT", parse_count, 0)
# Seconds the simulated provider spends on each provisioning step.
ELBIA_PROVISION_DELAY = _read("ELBIA_PROVISION_DELAY", parse_seconds, 2.0)
# Which provider provisions resources and deploys functions.
ELBIA_PROVIDER = env.str("ELBIA_PROVIDER", default="simulated")
# Work left in a transient status longer than this, and claimed by no worker, is requeued by the reaper
# (its message was lost after it was sent; a message never sent waits in the outbox instead).
ELBIA_STUCK_AFTER = _read("ELBIA_STUCK_AFTER", parse_seconds, 600.0)
# A worker working on a step touches its claim this often; a claim not touched for ELBIA_HEARTBEAT_TIMEOUT
# belongs to a dead worker, and the reaper (every ELBIA_REAP_INTERVAL) hands the step to a new message.
ELBIA_HEARTBEAT_INTERVAL = _read("ELBIA_HEARTBEAT_INTERVAL", parse_seconds, 5.0)
ELBIA_HEARTBEAT_TIMEOUT = _read("ELBIA_HEARTBEAT_TIMEOUT", parse_seconds, 30.0)
ELBIA_REAP_INTERVAL = _read("ELBIA_REAP_INTERVAL", parse_seconds, 10.0)
# How often the reaper requeues stuck work before it fails the resource.
ELBIA_STUCK_REQUEUES = _read("ELBIA_STUCK_REQUEUES", int, 3)
# Transient provider errors are retried this many times, after ELBIA_RETRY_BACKOFF * 2**n seconds.
ELBIA_PROVIDER_MAX_RETRIES = _read("ELBIA_PROVIDER_MAX_RETRIES", int, 5)
ELBIA_RETRY_BACKOFF = _read("ELBIA_RETRY_BACKOFF", parse_seconds, 2.0)
# The longest a retry waits (its countdown); with the task time limit, it sizes the broker's visibility timeout.
ELBIA_RETRY_BACKOFF_MAX = _read("ELBIA_RETRY_BACKOFF_MAX", parse_seconds, 60.0)
# The outbox relay (in every worker) sends what the web processes could not, this often (elbia.outbox);
# sent messages are deleted after ELBIA_OUTBOX_RETENTION.
ELBIA_OUTBOX_RELAY_INTERVAL = _read("ELBIA_OUTBOX_RELAY_INTERVAL", parse_seconds, 1.0)
ELBIA_OUTBOX_RETENTION = _read("ELBIA_OUTBOX_RETENTION", parse_seconds, 24 * 3600.0)
# Work started at the provider (an instance booting, a Lambda update) is looked at again after this many
# seconds, doubling on each look up to ELBIA_POLL_MAX (a Celery countdown: no worker waits meanwhile).
ELBIA_POLL_MAX = _read("ELBIA_POLL_MAX", parse_seconds, 30.0)
# ELBIA_PROVIDER=aws (docs/providers.md): credentials come from the standard AWS variables (or an instance
# role); ELBIA_AWS_ENDPOINT_URL points boto3 at an AWS-compatible endpoint (e.g. moto_server); the machine
# image of compute instances per region; the execution role of Lambda functions. The aws provider checks at
# start that what it needs is there.
ELBIA_AWS_ENDPOINT_URL = env.str("ELBIA_AWS_ENDPOINT_URL", default="") or None
ELBIA_AWS_AMI = _read("ELBIA_AWS_AMI", parse_ami_map, {})
ELBIA_AWS_LAMBDA_ROLE_ARN = env.str("ELBIA_AWS_LAMBDA_ROLE_ARN", default="")
# Lifetime of API access tokens (the refresh token renews them).
ELBIA_TOKEN_DAYS = _read("ELBIA_TOKEN_DAYS", int, 30)
# Lifetime of a signed invoice PDF link.
ELBIA_PDF_LINK_SECONDS = _read("ELBIA_PDF_LINK_SECONDS", parse_seconds, 3600.0)
# Who issues the invoices, as their PDFs show it: a name, address lines separated by "|", an email.
ELBIA_INVOICE_ISSUER = env.str("ELBIA_INVOICE_ISSUER", default="Elbia Lambda")
ELBIA_INVOICE_ISSUER_ADDRESS = env.str("ELBIA_INVOICE_ISSUER_ADDRESS", default="")
ELBIA_INVOICE_ISSUER_EMAIL = env.str("ELBIA_INVOICE_ISSUER_EMAIL", default="")
# Payment terms: an invoice is due this many days after its date.
ELBIA_INVOICE_DUE_DAYS = _read("ELBIA_INVOICE_DUE_DAYS", parse_count, 30)
# Lifetime of a signed function code download link.
ELBIA_CODE_LINK_SECONDS = _read("ELBIA_CODE_LINK_SECONDS", parse_seconds, 300.0)
# Function code: an S3 bucket when set (credentials and region from the standard AWS variables), else the
# local filesystem under MEDIA_ROOT/code. ELBIA_AWS_ENDPOINT_URL (above) points boto3 at an AWS-compatible endpoint.
ELBIA_CODE_BUCKET = env.str("ELBIA_CODE_BUCKET", default="")
# The local runtime (functions.runtime): the runner process listens on 127.0.0.1:ELBIA_RUNNER_PORT; its
# execution environments live under ELBIA_RUNTIME_DIR, at most ELBIA_RUNTIME_MAX_ENVIRONMENTS at once, an idle
# one is reaped after ELBIA_RUNTIME_IDLE_SECONDS. As root each environment runs as a user of its own, the
# first free one from ELBIA_RUNTIME_UID_BASE up (claimed host-wide). ELBIA_RUNTIME_PYTHON / ELBIA_RUNTIME_NODE
# name the interpreters (found on the host otherwise). See docs/functions-runtime.md.
ELBIA_RUNNER_PORT = _read("ELBIA_RUNNER_PORT", parse_count, 8471)
# The sandbox gives every function a private /tmp, /var/tmp and /dev/shm, hiding whatever lies there: a checkout
# under one of them (a CI clone in /tmp) keeps its runtime directory elsewhere, where the sandbox's users (as
# root, users of their own) can reach it.
_PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")  # noqa: S108 (named to be avoided, not written to)
_runtime_default = VAR_DIR / "runtime"
if any(_runtime_default.resolve().is_relative_to(private) for private in _PRIVATE_DIRS):
    _checkout = hashlib.sha256(str(BASE_DIR).encode()).hexdigest()[:12]
    _runtime_base = Path("/var/lib/elbia") if os.geteuid() == 0 else Path.home() / ".cache" / "elbia"
    _runtime_default = _runtime_base / f"runtime-{_checkout}"
ELBIA_RUNTIME_DIR = Path(env.str("ELBIA_RUNTIME_DIR", default=str(_runtime_default)))
ELBIA_RUNTIME_MAX_ENVIRONMENTS = _read("ELBIA_RUNTIME_MAX_ENVIRONMENTS", parse_count, 32)
ELBIA_RUNTIME_IDLE_SECONDS = _read("ELBIA_RUNTIME_IDLE_SECONDS", parse_seconds, 300.0)
ELBIA_RUNTIME_UID_BASE = _read("ELBIA_RUNTIME_UID_BASE", parse_count, 900000)
ELBIA_RUNTIME_PYTHON = env.str("ELBIA_RUNTIME_PYTHON", default="")
ELBIA_RUNTIME_NODE = env.str("ELBIA_RUNTIME_NODE", default="")
# Invocations (functions.invocations): at most this many runs of one function, and of one account's functions, at
# once (beyond: 429); an invocation's record (outcome, output tail) is kept this many days.
ELBIA_FUNCTION_CONCURRENCY = _read("ELBIA_FUNCTION_CONCURRENCY", parse_count, 10)
ELBIA_ACCOUNT_CONCURRENCY = _read("ELBIA_ACCOUNT_CONCURRENCY", parse_count, 50)
ELBIA_INVOCATION_RETENTION_DAYS = _read("ELBIA_INVOCATION_RETENTION_DAYS", parse_count, 7)
# Absolute base for links the API hands out when there is no request to build them from.
# The bearer secret /metrics asks for (Prometheus's `authorization` setting); unset, /metrics answers 404.
ELBIA_METRICS_TOKEN = env.str("ELBIA_METRICS_TOKEN", default="")
# A Celery worker's own /metrics (its task metrics): served on this port when set, on this internal address.
ELBIA_WORKER_METRICS_PORT = _read("ELBIA_WORKER_METRICS_PORT", parse_count, 0)
ELBIA_WORKER_METRICS_ADDRESS = env.str("ELBIA_WORKER_METRICS_ADDRESS", default="127.0.0.1")
ELBIA_PUBLIC_URL = env.str("ELBIA_PUBLIC_URL", default="http://127.0.0.1:8000")

# The OAuth client that `issue_token --json` prints and that renews tokens.
ELBIA_CLI_CLIENT_ID = "elbia-cli"

# Dashboard and admin sign-in: at most this many failures per client IP, and per username from addresses that
# never signed in as that user, in each window (seconds); see elbia.accounts.throttling.
ELBIA_LOGIN_ATTEMPTS = _read("ELBIA_LOGIN_ATTEMPTS", int, 10)
ELBIA_LOGIN_WINDOW = _read("ELBIA_LOGIN_WINDOW", parse_seconds, 900.0)
# Dashboard sign-up: at most this many new accounts per client IP per hour.
ELBIA_SIGNUP_ATTEMPTS = _read("ELBIA_SIGNUP_ATTEMPTS", int, 10)

# --- Applications ---------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "oauth2_provider",
    "elbia",
    "elbia.accounts",
    "elbia.audit",
    "resources",
    "functions",
    "billing",
]

MIDDLEWARE = [
    "elbia.api.middleware.HeadWithoutBodyMiddleware",
    "elbia.api.middleware.RequestIDMiddleware",
    "elbia.observability.http.MetricsMiddleware",  # inside the request id (its log line carries it)
    "elbia.api.errors.ApiErrorMiddleware",
    "elbia.api.throttling.RateLimitHeadersMiddleware",
    "elbia.hosts.HostPortMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "elbia.accounts.middleware.ContentSecurityPolicyMiddleware",
    "elbia.accounts.middleware.DashboardErrorPagesMiddleware",
]

ROOT_URLCONF = "elbia.urls"
WSGI_APPLICATION = "elbia.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------

VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": env.db_url_config(env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'elbia.sqlite3'}"))}
if DATABASES["default"]["ENGINE"] not in ("django.db.backends.postgresql", "django.db.backends.sqlite3"):
    raise ImproperlyConfigured(
        "Environment variable DATABASE_URL is invalid: use postgres://USER@HOST:PORT/NAME or sqlite:///PATH."
    )

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: WAL lets readers and one writer work at once.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", _read("DATABASE_CONN_MAX_AGE", int, 60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A database that does not answer costs a request seconds, not a hung worker (docs/faults.md): libpq's
    # connect_timeout (2 s at least), the server's statement_timeout, and a client-side deadline on every
    # wait for the server (elbia.db.postgresql), a little longer so that the server's own timeout wins.
    _statement_timeout = _read("DATABASE_STATEMENT_TIMEOUT", parse_seconds, 2.0)
    DATABASES["default"]["ENGINE"] = "elbia.db.postgresql"
    DATABASES["default"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        "connect_timeout": max(2, round(_read("DATABASE_CONNECT_TIMEOUT", parse_seconds, 2.0))),
        "options": f"-c statement_timeout={round(_statement_timeout * 1000)}",
        "wait_timeout": _statement_timeout + 0.5 if _statement_timeout else None,
    }
    DATABASES["default"]["TEST"] = {"NAME": env.str("DATABASE_TEST_NAME", default=None)}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Redis --------------------------------------------------------------

REDIS_URL = _read("REDIS_URL", partial(parse_url, schemes=("redis", "rediss", "unix")), "")
# Seconds to connect to Redis and to wait for any answer (cache, rate limits and the Celery broker alike).
REDIS_CONNECT_TIMEOUT = _read("REDIS_CONNECT_TIMEOUT", parse_seconds, 1.0)
REDIS_SOCKET_TIMEOUT = _read("REDIS_SOCKET_TIMEOUT", parse_seconds, 1.0)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "elbia",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": REDIS_CONNECT_TIMEOUT,
                "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "elbia"}}

# --- Celery -----------------------------------------------------------------------

CELERY_BROKER_URL = _read(
    "CELERY_BROKER_URL",
    partial(parse_url, schemes=("redis", "rediss", "amqp", "pyamqp", "sqla+sqlite", "sqla+postgresql", "memory")),
    REDIS_URL or f"sqla+sqlite:///{VAR_DIR / 'broker.sqlite3'}",
)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The longest a task may run (soft: SoftTimeLimitExceeded, recorded as a failure; hard: the process is killed).
CELERY_TASK_TIME_LIMIT = _read("ELBIA_TASK_TIME_LIMIT", parse_seconds, 120.0)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT * 0.9
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_CONNECT_TIMEOUT
if CELERY_BROKER_URL.startswith("redis"):
    # A message not acknowledged within the visibility timeout is redelivered (a dead worker's). A worker
    # holds a retry's message (a backoff, or a look at work still on its way) unacknowledged through its
    # countdown, then runs it: the timeout covers both,
    # so a live task is never delivered twice. Lifecycle steps recover sooner, through their heartbeat.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": round(CELERY_TASK_TIME_LIMIT + max(ELBIA_RETRY_BACKOFF_MAX, ELBIA_POLL_MAX) + 60),
        # Look for messages past their visibility timeout every 10 s (kombu's interval), not every 100 s.
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
        "socket_timeout": REDIS_SOCKET_TIMEOUT,
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# On the embedded SQLite broker (one machine, `make run`) the worker runs its tasks in threads: honcho stops a
# process by sending SIGTERM to its whole process group, which would kill prefork children mid-task (an ERROR
# line each, on every Ctrl-C). With a real broker, prefork: the task time limits above need it.
CELERY_WORKER_POOL = "threads" if CELERY_BROKER_URL.startswith("sqla+") else "prefork"
CELERY_TASK_DEFAULT_QUEUE = "elbia"
# Queued invocations have a queue of their own (the Procfile's worker consumes both): a burst of them never
# delays lifecycle work, and they can be given workers of their own.
ELBIA_INVOCATIONS_QUEUE = "invocations"
CELERY_TASK_ROUTES = {"functions.tasks.run_invocation": {"queue": ELBIA_INVOCATIONS_QUEUE}}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "clear-expired-tokens": {
        "task": "elbia.accounts.tasks.clear_expired_tokens",
        "schedule": crontab(minute=17, hour="*/6"),
    },
    "reap-stuck-resources": {
        "task": "resources.tasks.reap_stuck_resources",
        "schedule": ELBIA_REAP_INTERVAL,
    },
    "reap-stuck-functions": {
        "task": "functions.tasks.reap_stuck_functions",
        "schedule": ELBIA_REAP_INTERVAL,
    },
    "purge-sent-outbox-messages": {
        "task": "elbia.tasks.purge_sent_outbox_messages",
        "schedule": crontab(minute=23),
    },
    # Drift: what the provider reports against the active rows (a no-op with the simulated provider).
    "detect-resource-drift": {
        "task": "resources.tasks.detect_resource_drift",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 240},
    },
    "detect-function-drift": {
        "task": "functions.tasks.detect_function_drift",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 240},
    },
    "forget-stale-sign-in-addresses": {
        "task": "elbia.accounts.tasks.forget_stale_sign_in_addresses",
        "schedule": crontab(minute=47, hour=3),
    },
    "purge-expired-idempotency-records": {
        "task": "elbia.accounts.tasks.purge_expired_idempotency_records",
        "schedule": crontab(minute=41),
    },
    # Just after every UTC midnight (and hourly, should one be missed): open compute spans are metered
    # up to that midnight in the daily rollups (billing.rollups; a run that finds nothing new does nothing).
    "purge-expired-invocations": {
        "task": "functions.tasks.purge_expired_invocations",
        "schedule": crontab(minute=23),
    },
    "close-metering-day": {
        "task": "billing.tasks.close_metering_day",
        "schedule": crontab(minute=2),
    },
    # Early every day (UTC): invoices still missing for closed months; late on the 1st's first hour so
    # that the data plane's last events of the month arrive first.
    "generate-missing-invoices": {
        "task": "billing.tasks.generate_missing_invoices",
        "schedule": crontab(minute=0, hour=1),
    },
}

# --- OAuth 2.0 (django-oauth-toolkit) ---------------------------------------------

SCOPES = {
    "resources:read": "List and read resources, regions and instance types.",
    "resources:write": "Create, change and delete resources.",
    "functions:read": "List and read functions and runtimes.",
    "functions:write": "Deploy, change, deprecate and delete functions.",
    "functions:invoke": "Invoke functions and read their invocations.",
    "billing:read": "Read usage and invoices.",
    "usage:write": "Send function execution records (for metering service accounts).",
}

OAUTH2_PROVIDER = {
    "SCOPES": SCOPES,
    "DEFAULT_SCOPES": [],
    "ACCESS_TOKEN_EXPIRE_SECONDS": ELBIA_TOKEN_DAYS * 24 * 3600,
    # A refresh token outlives its access token so a client can still renew after a break.
    "REFRESH_TOKEN_EXPIRE_SECONDS": (ELBIA_TOKEN_DAYS + 60) * 24 * 3600,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "ACCESS_TOKEN_GENERATOR": "elbia.accounts.tokens.generate_access_token",
    "REFRESH_TOKEN_GENERATOR": "elbia.accounts.tokens.generate_refresh_token",
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "PKCE_REQUIRED": True,
    "OAUTH2_VALIDATOR_CLASS": "elbia.accounts.oauth.Validator",
}

# --- REST framework and OpenAPI ---------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["elbia.api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["elbia.api.permissions.HasRequiredScope"],
    "DEFAULT_RENDERER_CLASSES": ["elbia.api.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["elbia.api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "elbia.api.pagination.LimitOffsetPagination",
    "DEFAULT_FILTER_BACKENDS": ["elbia.api.filtering.FilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["elbia.api.throttling.TokenRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "elbia.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "elbia.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "STRICT_JSON": True,
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%SZ",
    "COERCE_DECIMAL_TO_STRING": True,
    "PAGE_SIZE": 50,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Elbia Lambda API",
    "DESCRIPTION": (
        "Manage cloud resources, serverless functions, usage and invoices. "
        "Every request carries an OAuth 2.0 bearer token: `Authorization: Bearer elb_...`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/v1",
    # Where clients send requests: this deployment's public base (ELBIA_PUBLIC_URL; paths carry /v1).
    "SERVERS": [{"url": ELBIA_PUBLIC_URL.rstrip("/"), "description": "This deployment (ELBIA_PUBLIC_URL)"}],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "elbia.api.schema.close_request_bodies",
        "elbia.api.schema.link_creates",
    ],
    # Fields named "status" have different choices (resources, functions, invoices): the invoices' enum is named
    # here, or drf-spectacular would give it a hash-suffixed name (StatusCfcEnum).
    "ENUM_NAME_OVERRIDES": {"InvoiceStatusEnum": "billing.models.InvoiceStatus"},
    "COMPONENT_SPLIT_REQUEST": True,
    # Enums are listed in the schema itself; "* `pending` - pending" lines would only repeat them.
    "ENUM_GENERATE_CHOICE_DESCRIPTION": False,
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An Elbia API token (`elb_...`)."}
        }
    },
    "SECURITY": [{"bearerAuth": []}],
    "AUTHENTICATION_WHITELIST": [],
}

# --- Email -------------------------------------------------------------------------

# EMAIL_URL: smtp+tls://user:password@host:587 and the like (django-environ); by default mail is printed.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Elbia Lambda <no-reply@localhost>")

# --- Sessions, security, static files ---------------------------------------------

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = _read("SECURE_COOKIES", _bool, not DEBUG and not TESTING)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
# Behind a TLS-terminating proxy: SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto (the header that says "https";
# only if the proxy always sets it). SECURE_HSTS_SECONDS > 0 sends Strict-Transport-Security on HTTPS answers.
_proxy_ssl_header = env.str("SECURE_PROXY_SSL_HEADER", default="")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
SECURE_HSTS_SECONDS = _read("SECURE_HSTS_SECONDS", parse_count, 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _read("SECURE_HSTS_INCLUDE_SUBDOMAINS", _bool, False)
SECURE_HSTS_PRELOAD = _read("SECURE_HSTS_PRELOAD", _bool, False)
SECURE_SSL_REDIRECT = _read("SECURE_SSL_REDIRECT", _bool, False)
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Sent on the dashboard's HTML pages (elbia.accounts.middleware); /admin/ and /docs/ keep their own rules.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'self'; object-src 'none'"
)
CONTENT_SECURITY_POLICY_EXEMPT_PATHS = ("/admin/", "/docs/")
# Request bodies above this are refused before they are parsed (a usage batch of 1,000 events fits).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    "code": code_storage(bucket=ELBIA_CODE_BUCKET, directory=MEDIA_ROOT / "code", endpoint_url=ELBIA_AWS_ENDPOINT_URL),
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# --- Logging ----------------------------------------------------------------------


def _log_format(text: str) -> str:
    if text not in ("plain", "json"):
        raise ValueError("expected plain or json")
    return text


# LOG_FORMAT=json: one JSON object per line (elbia.observability.logs), and one line per request; plain by default.
LOG_FORMAT = _read("LOG_FORMAT", _log_format, "plain")
LOG_REQUESTS = LOG_FORMAT == "json"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "elbia.api.middleware.RequestIDLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "elbia.observability.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
    },
}

SILENCED_SYSTEM_CHECKS: list[str] = []

if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    ELBIA_PROVISION_DELAY = _read("ELBIA_PROVISION_DELAY", parse_seconds, 0.0)
    ELBIA_RETRY_BACKOFF = _read("ELBIA_RETRY_BACKOFF", parse_seconds, 0.05)
