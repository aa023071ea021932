"""FinAegis settings, read from the environment.

With nothing set, the project runs on embedded defaults (SQLite under var/, in-process cache,
Celery tasks run eagerly) so a new user needs only Python. Production points DATABASE_URL at
PostgreSQL and REDIS_URL at Redis, and must set its own SECRET_KEY and EVENT_HASH_KEY.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse_lazy

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A development machine keeps its settings in .env (`make install` writes DEBUG=1 there); the
# environment wins over the file, and production, without the file, gets the strict defaults.
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEV_SECRET_KEY = "dev-only-secret-key-do-not-use-in-production"
DEV_EVENT_HASH_KEY = "dev-only-event-hash-key-do-not-use-in-production"

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
EVENT_HASH_KEY = env.str("EVENT_HASH_KEY", default=DEV_EVENT_HASH_KEY)
if not DEBUG and (SECRET_KEY == DEV_SECRET_KEY or EVENT_HASH_KEY == DEV_EVENT_HASH_KEY):
    raise ImproperlyConfigured(
        "DEBUG is off but SECRET_KEY or EVENT_HASH_KEY is the development default: set both to "
        "long random values (or DEBUG=1 on a development machine)."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # The console's theme must come before django.contrib.admin to override its templates.
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "guardian",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "apps.core",
    "apps.users",
    "apps.assets",
    "apps.accounts",
    "apps.payments",
    "apps.governance",
    "apps.baskets",
    # Last: the custodians' demo data opens the mock bank with what every other app's demo
    # data booked against its settlement account.
    "apps.workflows",
    "apps.custodians",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.RequestContextMiddleware",
    "apps.core.observability.MetricsMiddleware",
    "apps.core.middleware.HostileInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "finaegis.urls"
WSGI_APPLICATION = "finaegis.wsgi.application"

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

# --- database --------------------------------------------------------------------------------

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'finaegis.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE takes the write lock when a transaction starts, so two writers queue on the
        # busy timeout instead of one failing when it upgrades a read lock.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DATABASE_POOL", default=True
):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN", default=2),
        "max_size": env.int("DATABASE_POOL_MAX", default=20),
        "timeout": env.int("DATABASE_POOL_TIMEOUT", default=10),
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Server-side binding lets psycopg prepare the statements a command repeats on every call,
    # which saves PostgreSQL parsing and planning them again (a large share of a transfer).
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = env.bool(
        "DATABASE_SERVER_SIDE_BINDING", default=True
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache and jobs --------------------------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # Django's RedisCache, but a Redis outage degrades to a per-process cache instead of failing
    # requests (apps.core.cache); the short timeouts keep a request from hanging on a dead host.
    CACHES = {
        "default": {
            "BACKEND": "apps.core.cache.FallbackRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "finaegis",
            "OPTIONS": {
                "socket_connect_timeout": env.float("CACHE_CONNECT_TIMEOUT_SECONDS", default=0.5),
                "socket_timeout": env.float("CACHE_TIMEOUT_SECONDS", default=1.0),
                "FALLBACK_RETRY_SECONDS": env.float("CACHE_FALLBACK_RETRY_SECONDS", default=5.0),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# --- auth ------------------------------------------------------------------------------------

AUTH_USER_MODEL = "users.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a login while its user+address is locked out
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row; anonymous callers get nothing
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# Login lockout (console and API): after AXES_FAILURE_LIMIT failures for one email from one
# address, further attempts are refused for AXES_COOLOFF_HOURS.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"
AXES_VERBOSE = False
# Staff with a confirmed TOTP device must give its code at login; with STAFF_TOTP_REQUIRED every
# staff member must have one.
STAFF_TOTP_REQUIRED = env.bool("STAFF_TOTP_REQUIRED", default=False)
OTP_TOTP_ISSUER = "FinAegis"
API_TOKEN_TTL_DAYS = env.int("API_TOKEN_TTL_DAYS", default=30)
API_TOKEN_MAX_TTL_DAYS = env.int("API_TOKEN_MAX_TTL_DAYS", default=365)

# --- i18n, static ----------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed, compressed files need `collectstatic`, which production runs; development
        # serves the sources directly.
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- the operator console (Django admin with the unfold theme) -------------------------------


def _nav(title: str, icon: str, url_name: str, permission: str) -> dict:
    return {
        "title": title,
        "icon": icon,
        "link": reverse_lazy(url_name),
        "permission": lambda request: request.user.has_perm(permission),
    }


UNFOLD = {
    "SITE_TITLE": "FinAegis console",
    "SITE_HEADER": "FinAegis",
    "SITE_SUBHEADER": "Operator console",
    "SITE_SYMBOL": "account_balance",
    "DASHBOARD_CALLBACK": "finaegis.console.dashboard_callback",
    "LOGIN": {"form": "finaegis.console.StaffLoginForm"},
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": True,
        "navigation": [
            {
                "title": "Ledger",
                "items": [
                    {"title": "Dashboard", "icon": "dashboard",
                     "link": reverse_lazy("admin:index")},
                    _nav("Accounts", "account_balance_wallet", "admin:accounts_account_changelist",
                         "accounts.view_account"),
                    _nav("Transfers", "swap_horiz", "admin:payments_transfer_changelist",
                         "payments.view_transfer"),
                    _nav("Approvals", "approval", "admin:payments_movementrequest_changelist",
                         "payments.view_movementrequest"),
                    _nav("Reconciliations", "fact_check",
                         "admin:accounts_reconciliationrun_changelist",
                         "accounts.view_reconciliationrun"),
                ],
            },
            {
                "title": "Assets and rates",
                "items": [
                    _nav("Assets", "currency_exchange", "admin:assets_asset_changelist",
                         "assets.view_asset"),
                    _nav("Exchange rates", "trending_up", "admin:assets_exchangerate_changelist",
                         "assets.view_exchangerate"),
                    _nav("Rate deviations", "warning", "admin:assets_ratedeviation_changelist",
                         "assets.view_ratedeviation"),
                ],
            },
            {
                "title": "Governance and GCU",
                "items": [
                    _nav("Polls", "how_to_vote", "admin:governance_poll_changelist",
                         "governance.view_poll"),
                    _nav("Baskets", "pie_chart", "admin:baskets_basketasset_changelist",
                         "baskets.view_basketasset"),
                ],
            },
            {
                "title": "Operations",
                "items": [
                    _nav("Workflows", "account_tree", "admin:workflows_workflowrun_changelist",
                         "workflows.view_workflowrun"),
                    _nav("Custodian discrepancies", "balance",
                         "admin:custodians_custodiandiscrepancy_changelist",
                         "custodians.view_custodiandiscrepancy"),
                    _nav("Circuit breakers", "electrical_services",
                         "admin:custodians_circuitbreakerstate_changelist",
                         "custodians.view_circuitbreakerstate"),
                ],
            },
            {
                "title": "Audit trail",
                "items": [
                    _nav("Account events", "history", "admin:accounts_accountevent_changelist",
                         "accounts.view_accountevent"),
                    _nav("Payment events", "receipt_long", "admin:payments_paymentevent_changelist",
                         "payments.view_paymentevent"),
                    _nav("Asset events", "inventory", "admin:assets_assetevent_changelist",
                         "assets.view_assetevent"),
                ],
            },
            {
                "title": "People and access",
                "items": [
                    _nav("Users", "person", "admin:users_user_changelist", "users.view_user"),
                    _nav("Staff roles", "groups", "admin:auth_group_changelist", "auth.view_group"),
                    _nav("Login attempts", "lock", "admin:axes_accessattempt_changelist",
                         "axes.view_accessattempt"),
                ],
            },
        ],
    },
}  # fmt: skip

# --- API -------------------------------------------------------------------------------------

# One limit on a request body for the whole API (413 PAYLOAD_TOO_LARGE above it); Django's own
# limit on what it reads into memory is the same number.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES

REST_FRAMEWORK = {
    # JSON bodies only: a form or multipart body is 415 UNSUPPORTED_MEDIA_TYPE.
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.ApiJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.users.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "apps.users.permissions.TokenHasScope",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON", default="60/minute"),
        "user": env.str("THROTTLE_USER", default="600/minute"),
        # Login and registration: tight, against password guessing and sign-up floods.
        "auth": env.str("THROTTLE_AUTH", default="10/minute"),
    },
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.StandardPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "FinAegis API",
    "DESCRIPTION": "Core-banking REST API v1. Amounts are integers in the asset's minor units.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- event store -----------------------------------------------------------------------------

EVENT_STORE_SNAPSHOT_EVERY = env.int("EVENT_STORE_SNAPSHOT_EVERY", default=1000)
EVENT_STORE_RETRIES = env.int("EVENT_STORE_RETRIES", default=12)
# Aggregate states kept per process after commit (0 turns the cache off); see store._StateCache.
EVENT_STORE_STATE_CACHE_SIZE = env.int("EVENT_STORE_STATE_CACHE_SIZE", default=10000)

# Custodians (external banks) holding customer money; each has a settlement account. The first
# is the default for deposits and withdrawals. The mock bank stands in for a real one.
CUSTODIANS = env.list("CUSTODIANS", default=["mock_bank"])
DEFAULT_CUSTODIAN = CUSTODIANS[0]

# --- custodian connectors, workflows and scheduled jobs (apps.custodians, apps.workflows) -----

# Each custodian's connector: CUSTODIAN_CONNECTORS is JSON {code: {"class": dotted path, "name",
# "options": {...}, "webhook_secret"}}. A code without an entry gets the mock bank, but only in
# development or when the code says "mock": production must never pay out through a mock by
# accident. CUSTODIAN_WEBHOOK_SECRET_<CODE> overrides a webhook secret; without one (production's
# default) that custodian's webhooks are refused, since nothing could be verified.
_configured_connectors = env.json("CUSTODIAN_CONNECTORS", default={})
CUSTODIAN_CONNECTORS: dict[str, dict] = {}
for _code in CUSTODIANS:
    if _code not in _configured_connectors and not (DEBUG or _code.startswith("mock")):
        raise ImproperlyConfigured(f"custodian {_code!r} has no entry in CUSTODIAN_CONNECTORS")
    _connector = {
        "class": "apps.custodians.mock_bank.MockBank",
        "name": _code.replace("_", " ").title(),
        "options": {},
        **_configured_connectors.get(_code, {}),
    }
    _connector["webhook_secret"] = env.str(
        f"CUSTODIAN_WEBHOOK_SECRET_{_code.upper()}",
        default=_connector.get("webhook_secret")
        or (f"dev-only-webhook-secret-{_code}" if DEBUG else ""),
    )
    CUSTODIAN_CONNECTORS[_code] = _connector
# Around every connector call: retries of transient failures (exponential backoff with jitter,
# in seconds), and a circuit breaker shared by all processes (opens after `failure_threshold`
# consecutive failures or `failure_rate` of the last `window` calls; half-open after
# `open_seconds`; closes after `close_after` successes).
CUSTODIAN_RETRY = {
    "attempts": env.int("CUSTODIAN_RETRY_ATTEMPTS", default=3),
    "base_delay": env.float("CUSTODIAN_RETRY_BASE_SECONDS", default=0.2),
    "max_delay": env.float("CUSTODIAN_RETRY_MAX_SECONDS", default=2.0),
}
CUSTODIAN_CIRCUIT_BREAKER = {
    "failure_threshold": 5,
    "window": 10,
    "failure_rate": 0.5,
    "open_seconds": env.int("CUSTODIAN_CIRCUIT_OPEN_SECONDS", default=60),
    "close_after": 2,
}
# A signed webhook older or newer than this is refused (a replayed capture, or a broken clock).
CUSTODIAN_WEBHOOK_TOLERANCE_SECONDS = env.int("CUSTODIAN_WEBHOOK_TOLERANCE_SECONDS", default=300)
# How often a workflow asks about a pending transfer (a webhook wakes it sooner), and how long
# it waits for one to settle before it gives up and compensates.
CUSTODIAN_POLL_SECONDS = env.int("CUSTODIAN_POLL_SECONDS", default=30)
CUSTODIAN_SETTLEMENT_TIMEOUT_SECONDS = env.int(
    "CUSTODIAN_SETTLEMENT_TIMEOUT_SECONDS", default=3 * 24 * 3600
)
# What a customer's own account at a mock bank holds when it is opened (minor units per asset):
# with DEBUG (development, demos, tests) each customer has something to deposit: 10,000.00 of each
# currency, 1,000,000 JPY, 10 oz of gold, 0.1 BTC, 5 ETH; otherwise none.
MOCK_BANK_CUSTOMER_OPENING_BALANCES: dict[str, int] = env.json(
    "MOCK_BANK_CUSTOMER_OPENING_BALANCES",
    default=(
        {
            "USD": 1_000_000,
            "EUR": 1_000_000,
            "GBP": 1_000_000,
            "CHF": 1_000_000,
            "JPY": 1_000_000,
            "XAU": 10_000,
            "BTC": 10_000_000,
            "ETH": 500_000_000,
        }
        if DEBUG
        else {}
    ),
)

# Workflow runtime: a worker's lease on a run (renewed before and during every step; a dead
# worker's run is resumed once it expires); how long an unheld due run may sit before
# resume_stale_workflows hands it out again; attempts and backoff of transient failures; how
# long a step may keep waiting (StepPending) by default.
WORKFLOW_LEASE_SECONDS = env.int("WORKFLOW_LEASE_SECONDS", default=120)
WORKFLOW_STALE_AFTER_SECONDS = env.int("WORKFLOW_STALE_AFTER_SECONDS", default=60)
WORKFLOW_RESUME_BATCH = env.int("WORKFLOW_RESUME_BATCH", default=500)
WORKFLOW_STEP_MAX_ATTEMPTS = env.int("WORKFLOW_STEP_MAX_ATTEMPTS", default=5)
WORKFLOW_COMPENSATION_MAX_ATTEMPTS = env.int("WORKFLOW_COMPENSATION_MAX_ATTEMPTS", default=10)
WORKFLOW_RETRY_BASE_SECONDS = env.float("WORKFLOW_RETRY_BASE_SECONDS", default=5.0)
WORKFLOW_RETRY_MAX_SECONDS = env.float("WORKFLOW_RETRY_MAX_SECONDS", default=900.0)
WORKFLOW_STEP_TIMEOUT_SECONDS = env.int("WORKFLOW_STEP_TIMEOUT_SECONDS", default=24 * 3600)
# The Celery queue that workflow runs are advanced on; empty: the default queue. Workers must
# consume it (`celery -A finaegis worker -Q celery,<queue>`).
WORKFLOW_QUEUE = env.str("WORKFLOW_QUEUE", default="")
# Fault injection for chaos tests only: "<workflow type>:<step>" ends the process right after
# that step's action, before its completion is recorded (apps.workflows.faults).
WORKFLOW_CRASH_AFTER_STEP = env.str("WORKFLOW_CRASH_AFTER_STEP", default="")
# Scheduled-job runs (JobRun) are kept this many days for the console.
JOB_RUN_RETENTION_DAYS = env.int("JOB_RUN_RETENTION_DAYS", default=14)

# Where exchange rates come from (refresh_exchange_rates, the hourly job), and how long a looked-up
# rate may be served from the cache (a new rate drops the cache at once anyway).
EXCHANGE_RATE_PROVIDER = env.str(
    "EXCHANGE_RATE_PROVIDER", default="apps.assets.providers.DemoRateProvider"
)
EXCHANGE_RATE_CACHE_SECONDS = env.int("EXCHANGE_RATE_CACHE_SECONDS", default=60)
# The bank's spread on conversions, in basis points of the mid, half on each side: a customer
# converts at the bid (mid less half the spread); a recorded bid or ask wider than that is kept.
EXCHANGE_SPREAD_BPS = env.int("EXCHANGE_SPREAD_BPS", default=50)
if not 0 <= EXCHANGE_SPREAD_BPS < 10_000:
    raise ImproperlyConfigured("EXCHANGE_SPREAD_BPS must be from 0 to 9999")
# A new rate further than this (percent) from its reference (the pair's 24-hour average, else the
# rate in force) is recorded as pending and used only once a second staff member approves it.
try:
    EXCHANGE_RATE_BAND_PCT = Decimal(env.str("EXCHANGE_RATE_BAND_PCT", default="10"))
except InvalidOperation:
    raise ImproperlyConfigured("EXCHANGE_RATE_BAND_PCT must be a decimal number") from None
if not EXCHANGE_RATE_BAND_PCT.is_finite() or EXCHANGE_RATE_BAND_PCT < 0:
    raise ImproperlyConfigured("EXCHANGE_RATE_BAND_PCT must be a number of percent, 0 or more")

# Per-user limits of the API's money-moving operations, per kind (deposit, withdrawal, transfer
# (bulk items too), conversion, basket compose/decompose): counts per hour and day; amounts per
# hour per asset in minor units; the value moved per hour and day in US cents at mid rates
# (usd_amount_per_hour/_per_day). "total" is one more budget that every kind but deposits counts
# against, so splitting a movement across kinds gains nothing (apps.payments.limits). A missing
# key or null is no limit. OPERATION_LIMITS takes JSON to override the whole object.
_USD_BUDGET = {"usd_amount_per_hour": 25_000_000, "usd_amount_per_day": 100_000_000}
OPERATION_LIMITS = env.json(
    "OPERATION_LIMITS",
    default={
        # money arriving from outside, confirmed by its custodian: no dollar budget by default
        "deposit": {"per_hour": 60, "per_day": 500, "amount_per_hour": {}},
        "withdrawal": {"per_hour": 60, "per_day": 500, "amount_per_hour": {}, **_USD_BUDGET},
        "transfer": {"per_hour": 600, "per_day": 5000, "amount_per_hour": {}, **_USD_BUDGET},
        "conversion": {"per_hour": 600, "per_day": 5000, "amount_per_hour": {}, **_USD_BUDGET},
        "basket": {"per_hour": 600, "per_day": 5000, "amount_per_hour": {}, **_USD_BUDGET},
        "total": _USD_BUDGET,
    },
)

# A staff member's manual deposit or withdrawal worth more than this (US cents at current rates)
# waits for a second staff member's approval.
MAKER_CHECKER_THRESHOLD_USD = env.int("MAKER_CHECKER_THRESHOLD_USD", default=1_000_000)

# Bounds of every amount, in each asset's minor units: one leg of an entry may move at most
# per_operation, and no account (system accounts included, so a custodian's settlement account
# too) may hold more than per_balance either way. Far below 2^63, so no balance, sum or daily
# turnover overflows. JSON {"default": {...}, "<ASSET>": {"per_operation": N, "per_balance": N}}.
ASSET_AMOUNT_LIMITS = {
    "default": {"per_operation": 10**14, "per_balance": 10**16},
    **env.json("ASSET_AMOUNT_LIMITS", default={}),
}

# /healthz answers within this many seconds (load balancers give up on a probe after 1-2 s): a
# cache or broker check still waiting then counts as failed.
HEALTHZ_TIMEOUT_SECONDS = env.float("HEALTHZ_TIMEOUT_SECONDS", default=0.4)

# Idempotency-Key responses are kept at least this long (API.md: at least 24 hours).
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)

# --- governance and the GCU basket -----------------------------------------------------------

# Votes are signed with HMAC-SHA256 under this key; empty (the default) derives one from
# EVENT_HASH_KEY under its own label (apps.governance.signing). Changing it makes the stored
# signatures fail verification.
GOVERNANCE_VOTE_SIGNING_KEY = env.str("GOVERNANCE_VOTE_SIGNING_KEY", default="")
# The monthly composition vote of a basket (opened on the 20th, applied on the 1st): the voting
# power strategy and the participation (percent of the eligible power) its result needs.
BASKET_VOTE_STRATEGY = env.str("BASKET_VOTE_STRATEGY", default="gcu_weighted")
BASKET_VOTE_REQUIRED_PARTICIPATION = env.str("BASKET_VOTE_REQUIRED_PARTICIPATION", default="10")

# --- security behind a proxy -----------------------------------------------------------------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)

# LOG_FORMAT: "json" (default) writes one JSON object per line (apps.core.observability's
# JsonFormatter: timestamp, level, logger, message, request_id, correlation_id, actor, exc_info,
# extra fields); "plain" writes readable text lines, for a terminal.
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "apps.core.observability.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own loggers go through the console handler above only, in the same format
        # (Django's default config would also print them, unformatted, when DEBUG is on).
        "django": {"handlers": [], "level": "INFO"},
        "django.db.backends": {"level": "WARNING"},
    },
}

# GET /metrics (Prometheus) answers loopback callers without proxy headers, and any caller that
# sends "Authorization: Bearer <METRICS_TOKEN>"; empty (default) means loopback only.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
