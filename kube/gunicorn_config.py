"""gunicorn settings shared by `make run`, the tests and Docker Compose."""

# Error pages gunicorn writes itself (a request line too long, a bad request before the app
# is reached) are problem+json like every other error of the platform.
worker_class = "kube.gunicorn_worker.ProblemSyncWorker"
