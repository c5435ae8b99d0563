"""kube-client: the Python client internal apps use to call the KUBE platform."""

from kube_client.client import KubeClient
from kube_client.errors import (
    Conflict,
    Forbidden,
    KubeClientError,
    NotFound,
    PreconditionFailed,
    ProblemError,
    ServiceUnavailable,
    TransportError,
    Unauthorized,
    ValidationFailed,
    WaitTimeout,
)
from kube_client.grants import Grants
from kube_client.notifications import Notifications
from kube_client.registry import Registry
from kube_client.transport import __version__

__all__ = [
    "Conflict",
    "Forbidden",
    "Grants",
    "KubeClient",
    "KubeClientError",
    "NotFound",
    "Notifications",
    "PreconditionFailed",
    "ProblemError",
    "Registry",
    "ServiceUnavailable",
    "TransportError",
    "Unauthorized",
    "ValidationFailed",
    "WaitTimeout",
    "__version__",
]
