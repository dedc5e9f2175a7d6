"""Example bioimageio-run plugin: weight format ``linear_npz`` and processing op ``example_power``."""
