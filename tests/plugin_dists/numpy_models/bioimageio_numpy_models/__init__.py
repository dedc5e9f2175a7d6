"""A numpy-only weight format for bioimageio-run's tests (installed by the nox tests session)."""
