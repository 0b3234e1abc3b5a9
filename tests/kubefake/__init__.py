"""An HTTP fake of the Kubernetes API server that `kubectl` and the `kubernetes` client use."""

from .endpoints import DeploymentRequestRecord
from .server import FakeKubeAPI, RequestRecord

__all__ = ["DeploymentRequestRecord", "FakeKubeAPI", "RequestRecord"]
