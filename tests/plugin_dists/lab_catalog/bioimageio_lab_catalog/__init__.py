"""A third-party style plugin used by the core's tests: a ``lab:<name>`` source resolver and a
PGM (netpbm P5) image format, registered through a real entry point."""
