"""Elbia settings: every value is read from the environment here, and only here.

With no environment at all the service runs on embedded defaults that need no
server: SQLite, a Celery broker on a SQLite file (kombu's SQLAlchemy transport)
and the local-memory cache. ``DATABASE_URL`` and ``REDIS_URL`` switch the same
code to PostgreSQL and Redis. A bad value stops the process at start with a
message naming the variable.
"""

import base64
import hashlib
from functools import partial
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from elbia.config import parse_count, parse_fernet_keys, parse_rate, parse_seconds, parse_url

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


DEBUG = _read("DEBUG", _bool, False)
TESTING = _read("ELBIA_TESTING", _bool, False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured(
            "Environment variable SECRET_KEY is required when DEBUG is off (set DEBUG=1 for local development)."
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

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
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
# Work left in a transient status longer than this is requeued, then failed, by the reaper.
ELBIA_STUCK_AFTER = _read("ELBIA_STUCK_AFTER", parse_seconds, 600.0)
# How often the reaper requeues stuck work before it fails the resource.
ELBIA_STUCK_REQUEUES = _read("ELBIA_STUCK_REQUEUES", int, 3)
# Transient provider errors are retried this many times, after ELBIA_RETRY_BACKOFF * 2**n seconds (capped at 5 min).
ELBIA_PROVIDER_MAX_RETRIES = _read("ELBIA_PROVIDER_MAX_RETRIES", int, 5)
ELBIA_RETRY_BACKOFF = _read("ELBIA_RETRY_BACKOFF", parse_seconds, 2.0)
# Lifetime of API access tokens (the refresh token renews them).
ELBIA_TOKEN_DAYS = _read("ELBIA_TOKEN_DAYS", int, 30)
# Lifetime of a signed invoice PDF link.
ELBIA_PDF_LINK_SECONDS = _read("ELBIA_PDF_LINK_SECONDS", parse_seconds, 3600.0)
# Absolute base for links the API hands out when there is no request to build them from.
ELBIA_PUBLIC_URL = env.str("ELBIA_PUBLIC_URL", default="http://127.0.0.1:8000")

# The OAuth client that `issue_token --json` prints and that renews tokens.
ELBIA_CLI_CLIENT_ID = "elbia-cli"

# Dashboard sign-in: at most this many attempts per client IP and per username in each window (seconds).
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
    "elbia.api.middleware.RequestIDMiddleware",
    "elbia.api.throttling.RateLimitHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "elbia.accounts.middleware.ContentSecurityPolicyMiddleware",
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
    DATABASES["default"]["TEST"] = {"NAME": env.str("DATABASE_TEST_NAME", default=None)}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Redis --------------------------------------------------------------

REDIS_URL = _read("REDIS_URL", partial(parse_url, schemes=("redis", "rediss", "unix")), "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "elbia",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
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
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
if CELERY_BROKER_URL.startswith("redis"):
    # A message not acknowledged within this time is redelivered; it must exceed the hard time limit.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "elbia"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "clear-expired-tokens": {
        "task": "elbia.accounts.tasks.clear_expired_tokens",
        "schedule": crontab(minute=17, hour="*/6"),
    },
    "reap-stuck-resources": {
        "task": "resources.tasks.reap_stuck_resources",
        "schedule": crontab(minute="*"),
    },
    "reap-stuck-functions": {
        "task": "functions.tasks.reap_stuck_functions",
        "schedule": crontab(minute="*"),
    },
    "purge-expired-idempotency-records": {
        "task": "elbia.accounts.tasks.purge_expired_idempotency_records",
        "schedule": crontab(minute=41),
    },
    # Just after every UTC midnight (and hourly, should one be missed): open compute spans are metered
    # up to that midnight in the daily rollups (billing.rollups; a run that finds nothing new does nothing).
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

# --- Sessions, security, static files ---------------------------------------------

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = _read("SECURE_COOKIES", _bool, not DEBUG and not TESTING)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "elbia.api.middleware.RequestIDLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]},
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
