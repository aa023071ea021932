# syntax=docker/dockerfile:1
#
# FinAegis web image; the Celery worker and beat run the same image with another command
# (see docker-compose.yml). Settings come from the environment at run time: DEBUG, SECRET_KEY,
# EVENT_HASH_KEY, ALLOWED_HOSTS, DATABASE_URL, REDIS_URL.

# --- runtime ---------------------------------------------------------------------------------
FROM python:3.11-slim

# The code runs from /app (BASE_DIR must be /app for templates/, static/ and var/), never from
# the copy that `pip install .` puts in site-packages: PYTHONPATH puts /app first for every
# entry point (manage.py, gunicorn, celery).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    DJANGO_SETTINGS_MODULE=finaegis.settings \
    PYTHONPATH=/app

RUN groupadd --system --gid 10001 finaegis \
    && useradd --system --uid 10001 --gid finaegis --create-home --home-dir /home/finaegis \
        --shell /usr/sbin/nologin finaegis

WORKDIR /app

# Source files stay owned by root (.dockerignore keeps local state out of the context): the
# application can read its code but not change it.
COPY . /app

RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -c constraints.txt . \
    && rm -rf build ./*.egg-info

# var/ is the only writable directory: collected static files (STATIC_ROOT is var/static) and
# the SQLite file of the embedded default, should DATABASE_URL be left unset.
RUN mkdir -p /app/var && chown finaegis:finaegis /app/var

USER finaegis

# Hashed, compressed static files for whitenoise. The settings refuse to load with DEBUG off and
# the development keys, so this step gets throwaway values that exist only for this command.
RUN DEBUG=0 \
    SECRET_KEY=build-only-not-a-secret \
    EVENT_HASH_KEY=build-only-not-a-secret \
    python manage.py collectstatic --noinput

EXPOSE 8000

CMD ["gunicorn", "finaegis.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
