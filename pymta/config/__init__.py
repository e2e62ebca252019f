"""Configuration: one TOML file loaded into one frozen, typed object tree (`model.Config`).

`loader.load_config(path)` parses and validates; every error (`ConfigError`) names the
file, the line, the key path and what was expected. Nothing else in pymta reads TOML.
"""
