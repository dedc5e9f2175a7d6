"""A toy bioimageio-run plugin used by the core's tests (a real entry point, installed in tests)."""
