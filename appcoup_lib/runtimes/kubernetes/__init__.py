"""The ``kubernetes`` runtime, a package of the same files as the others: ``runtime`` (the Runtime),
``app`` (the App), ``events`` (its timeline, watched), ``scaling`` (its Scaling hooks); and its own
plumbing: ``client`` (the one error boundary), ``translate``, ``placement`` (a namespace per app, or one
shared), ``flavour``, ``images``, ``namespaces``, ``portforward``; and the teacher's ``preload``.

Importing it registers :class:`KubernetesRuntime`; the ``kubernetes`` client itself is imported
only when a cluster is used (``pip install 'appcoup[kubernetes]'``).
"""

from .app import KubernetesApp
from .runtime import KubernetesRuntime

__all__ = ["KubernetesApp", "KubernetesRuntime"]
