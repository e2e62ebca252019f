"""Configuration: one TOML file loaded into one frozen, typed object tree (`model.Config`).

`loader.load_config(path)` parses and validates; every error (`ConfigError`) names the
file, the line, the key path and what was expected. Nothing else in pymta reads TOML.
"""

from pymta.config.errors import ConfigError, ConfigProblem
from pymta.config.loader import load_config, parse_config

__all__ = ["ConfigError", "ConfigProblem", "load_config", "parse_config"]
