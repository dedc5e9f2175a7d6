"""Development sessions: `nox` runs lint, type checks and every test session.

Every install goes through constraints.txt (it pins torch to a CPU build).
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

ROOT = Path(__file__).parent
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))
PLUGINS = sorted(p.name for p in (ROOT / "plugins").glob("*") if (p / "pyproject.toml").exists())

nox.options.sessions = [
    "lint",
    "typecheck",
    "tests",
    *(f"tests_{name}" for name in PLUGINS),
    "tests_conversion",
    "interop",
    "tests_optional_ops",
    "tests_server",
    "tests_distributed",
]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False


def install(session: nox.Session, *args: str) -> None:
    session.install(*CONSTRAINTS, *args)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the core, plugins, tests, scripts and benchmarks."""
    install(session, "ruff")
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on bioimageio_core, the backend plugins and the example plugin (their
    frameworks are not installed: typed as Any, see [tool.mypy] in pyproject.toml)."""
    install(session, "mypy", "types-PyYAML", "types-requests", "-e", ".[test,server,distributed]")
    session.run("mypy")


@nox.session
def tests(session: nox.Session) -> None:
    """Core tests (no deep-learning framework needed)."""
    install(session, "-e", ".[test]")
    for helper in sorted((ROOT / "tests" / "plugin_dists").glob("*/pyproject.toml")):
        install(session, "-e", str(helper.parent))
    # the documented example, with the conformance battery in its own tests
    install(session, "-e", f"{ROOT / 'docs' / 'examples' / 'minimal-plugin'}[test]")
    # tests that need the plugin test distributions fail (instead of skipping) when they are missing
    # benchmarks/test_direct.py checks that the benchmark floor does the pipeline's work
    session.run(
        "pytest",
        "tests",
        "benchmarks",
        "docs/examples/minimal-plugin/tests",
        *session.posargs,
        env={"BIOIMAGEIO_TEST_PLUGIN_DISTS": "required"},
    )


@nox.session
def fuzz(session: nox.Session) -> None:
    """Long fuzzing run (not a default session; a few minutes): tests/fuzz with the hypothesis
    profile "fuzz" (2000 new examples per test). The tests session runs the same suite with a
    few hundred examples."""
    install(session, "-e", ".[test]", "-e", str(ROOT / "tests" / "plugin_dists" / "numpy_models"))
    session.run(
        "pytest",
        "tests/fuzz",
        *session.posargs,
        env={"HYPOTHESIS_PROFILE": "fuzz", "BIOIMAGEIO_TEST_PLUGIN_DISTS": "required"},
    )


def _plugin_session(name: str) -> None:
    @nox.session(name=f"tests_{name}")
    def plugin_tests(session: nox.Session) -> None:
        # the server extra: a backend's tests may check that it also runs behind `serve`
        install(session, "-e", ".[test,server]", "-e", f"plugins/{name}[test]")
        session.run("pytest", f"plugins/{name}/tests", *session.posargs)

    plugin_tests.__doc__ = f"Tests of the {name} backend plugin (core + that plugin only)."


for _name in PLUGINS:
    _plugin_session(_name)


@nox.session
def tests_conversion(session: nox.Session) -> None:
    """Weight converters end to end (add-weights -> package -> test) with every backend plugin,
    and keras_v3 weights on a declared backend other than the one keras was imported with."""
    plugin_args = [arg for name in PLUGINS for arg in ("-e", f"plugins/{name}[test]")]
    install(session, "-e", ".[test]", *plugin_args)
    session.run(
        "pytest",
        "plugins/torch/tests/test_converters_torch.py",
        "plugins/keras/tests/test_converters_keras.py",
        # keras_v3 weights on their declared backend (a TensorFlow worker next to torch)
        "plugins/keras/tests/test_keras_backends.py",
        *session.posargs,
    )


REFERENCE_SPEC = "bioimageio.spec==0.5.14.3"
"""The reference format library the interop session checks against (never a dependency)."""


@nox.session
def interop(session: nox.Session) -> None:
    """Both directions with the reference format library (bioimageio.spec, in this session only).

    What we write (update-format, package, add-weights, save) is accepted by it as model 0.5.14 /
    generic 0.3.4; what it writes (update_format, packages) is accepted by us and passes
    `bioimageio-run test`. Needs the conformance data (../shared/conformance): set
    BIOIMAGEIO_TEST_CONFORMANCE=optional to run without it (those tests then skip). The reference
    runs offline: format checks without io, io checks only on local files.
    """
    install(
        session,
        "-e", ".[test]",
        "-e", "plugins/onnx[test]",
        "-e", "plugins/torch[test]",
        "-e", "plugins/keras[test]",
        REFERENCE_SPEC,
    )  # fmt: skip
    conformance = os.environ.get("BIOIMAGEIO_TEST_CONFORMANCE", "required")
    session.run(
        "pytest",
        "tests/interop",
        *session.posargs,
        env={
            "BIOIMAGEIO_TEST_INTEROP": "required",
            "BIOIMAGEIO_TEST_CONFORMANCE": conformance,
            "KERAS_BACKEND": "torch",
        },
    )


@nox.session
def tests_optional_ops(session: nox.Session) -> None:
    """Processing ops with optional dependencies (stardist, cellpose 3) against the real packages."""
    install(
        session,
        "-e",
        ".[test,stardist,cellpose]",
        "-e",
        str(ROOT / "tests" / "plugin_dists" / "numpy_models"),
    )
    session.run(
        "pytest",
        "tests/optional_ops",
        *session.posargs,
        env={"BIOIMAGEIO_TEST_OPTIONAL_OPS": "required", "BIOIMAGEIO_TEST_PLUGIN_DISTS": "required"},
    )


@nox.session
def tests_server(session: nox.Session) -> None:
    """`serve` and `predict --server` end to end: real uvicorn servers, the onnx backend."""
    install(session, "-e", ".[test,server]", "-e", "plugins/onnx[test]")
    # the server tests fail (instead of skipping) when the server extra or onnx is missing
    session.run(
        "pytest", "tests/server", "tests/remote", *session.posargs,
        env={"BIOIMAGEIO_TEST_SERVER": "required"},
    )


@nox.session
def tests_distributed(session: nox.Session) -> None:
    """Out-of-core and dask.distributed prediction end to end (the `distributed` extra): local
    clusters of 2 worker processes on small volumes."""
    install(
        session,
        "-e",
        ".[test,distributed]",
        "-e",
        str(ROOT / "tests" / "plugin_dists" / "numpy_models"),
    )
    # the distributed tests fail (instead of skipping) when the extra or the test models are missing
    session.run(
        "pytest", "tests/distributed", "tests/pipeline/test_outofcore.py", *session.posargs,
        env={"BIOIMAGEIO_TEST_DISTRIBUTED": "required", "BIOIMAGEIO_TEST_PLUGIN_DISTS": "required"},
    )  # fmt: skip


@nox.session
def schemas(session: nox.Session) -> None:
    """Regenerate the JSON Schemas in schemas/ from the descriptor classes."""
    install(session, "-e", ".")
    session.run("python", "scripts/generate_schemas.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Regenerate docs/cli.md and the tables of docs/descriptors.md (`-- --check`: only check)."""
    install(session, "-e", ".")
    session.run("python", "scripts/generate_cli_docs.py", *session.posargs)
    session.run("python", "scripts/generate_descriptor_docs.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark suite -> docs/benchmarks.md (not a default session; takes about 10 minutes).

    Arguments after `--` go to benchmarks/run.py (`--quick`, `--only overhead,stats`, …);
    `--reference` also installs the reference implementation bioimageio.core into this
    session's environment (only here) and compares against it.
    """
    install(
        session,
        "-e",
        ".[image,hdf5,server,distributed]",
        "-e",
        "plugins/onnx",
        "-e",
        "plugins/torch",
        "onnx",
    )
    if "--reference" in session.posargs:
        # bioimageio.spec 0.5.12 breaks with pydantic >= 2.12 (its models fail to build)
        install(session, "bioimageio.core", "pydantic<2.12")
    session.run("python", "benchmarks/run.py", *session.posargs)
