"""Image references, as Docker shows them whatever engine or node reported them."""

from __future__ import annotations


def short_ref(ref: str) -> str:
    """An image reference as Docker shows it: Podman and containerd qualify short names with their
    default registry's host (and ``library/``), and a tag given to an import is ``localhost/...``.

    A first path component is a registry host when it has a dot or a port, or is ``localhost``
    (the image reference grammar), so no registry's name is written here.
    """
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        ref = rest
        if ref.startswith("library/"):
            ref = ref[len("library/"):]
    return ref


__all__ = ["short_ref"]
