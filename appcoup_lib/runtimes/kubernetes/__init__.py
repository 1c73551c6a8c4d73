"""The ``kubernetes`` runtime (a package: translate, client, images, portforward, timeline, app, runtime).

Importing it registers :class:`KubernetesRuntime`; the ``kubernetes`` client itself is imported
only when a cluster is used (``pip install 'appcoup[kubernetes]'``).
"""

from .app import KubernetesApp
from .runtime import KubernetesRuntime

__all__ = ["KubernetesApp", "KubernetesRuntime"]
