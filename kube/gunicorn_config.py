"""gunicorn settings shared by `make run`, the tests and Docker Compose."""

import glob
import os
import shutil
import tempfile

# Error pages gunicorn writes itself (a request line too long, a bad request before the app
# is reached) are problem+json like every other error of the platform.
worker_class = "kube.gunicorn_worker.ProblemSyncWorker"

# A request may take this long before its worker is restarted. gunicorn's 30 s is too short
# for the largest real request: a decree approving 10,000 applications takes 20-35 s on a
# 2-core machine (docs/performance.md).
timeout = 120

# Request metrics (`GET /metrics`, shared/metrics.py) are kept in files that every worker
# writes and any worker sums at a scrape, so the counters are those of the whole instance
# whichever worker answers. Set here, in the master, before any worker imports
# prometheus_client. One directory per gunicorn instance: a private one unless the operator
# names one (which must then belong to this instance alone).
_METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
_private_metrics_dir = not os.environ.get(_METRICS_DIR_ENV)
if _private_metrics_dir:
    os.environ[_METRICS_DIR_ENV] = tempfile.mkdtemp(prefix="kube-metrics-")


def on_starting(server):
    """Start from zero: files left by an earlier run would add its counts to this one's."""
    directory = os.environ[_METRICS_DIR_ENV]
    os.makedirs(directory, exist_ok=True)
    for path in glob.glob(os.path.join(directory, "*.db")):
        os.remove(path)


def child_exit(server, worker):
    """A worker that exits keeps its counts (files stay); only its live gauges go."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _private_metrics_dir:
        shutil.rmtree(os.environ[_METRICS_DIR_ENV], ignore_errors=True)
