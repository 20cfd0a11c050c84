"""loadkit: load and chaos testing for digital-wallet services."""

from loadkit.errors import (
    ComponentFailed,
    ConfigError,
    EnvironmentProblem,
    ExitCode,
    LoadkitError,
)

__version__ = "0.1.0"

__all__ = [
    "ComponentFailed",
    "ConfigError",
    "EnvironmentProblem",
    "ExitCode",
    "LoadkitError",
    "__version__",
]
