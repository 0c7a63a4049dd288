"""Scanning: what an image holds (``sbom``, read from a registry, the local engine or a ``rootfs``
directory) and, built on it, findings and the policy gate."""
