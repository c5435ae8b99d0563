"""gunicorn settings shared by `make run`, the tests and Docker Compose."""

# Error pages gunicorn writes itself (a request line too long, a bad request before the app
# is reached) are problem+json like every other error of the platform.
worker_class = "kube.gunicorn_worker.ProblemSyncWorker"

# A request may take this long before its worker is restarted. gunicorn's 30 s is too short
# for the largest real request: a decree approving 10,000 applications takes 20-35 s on a
# 2-core machine (docs/performance.md).
timeout = 120
