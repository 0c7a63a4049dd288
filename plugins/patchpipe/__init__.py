"""patchpipe: keep a fleet of container images patched.

The domain core lives here and imports no Airflow; ``patchpipe.airflow`` adapts it to operators.
"""
