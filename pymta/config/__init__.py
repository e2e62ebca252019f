"""Configuration: one TOML file loaded into one frozen, typed object tree (`model.Config`).

`loader.load_config(path)` parses and validates; every error (`ConfigError`) names the
file, the line, the key path and what was expected. Nothing else in pymta reads TOML.

Modules:
- `model` — the typed tree: a frozen dataclass per TOML table, the enums, `Secret`.
- `loader` — `load_config` / `parse_config`: TOML in, `Config` out; reads the tables of
  plain settings (`[server]`, `[tls]`, `[mailboxes]`, `[queue]`, `[limits]`, `[logging]`)
  and hands the tables of entries to the three readers below.
- `listeners` — `[listeners.NAME]`: bind addresses, ports, TLS mode, clashes between them.
- `directory` — `[directory]`: users, password hashes, groups and their memberships.
- `routing` — `[[domains]]`, `[[public_mailboxes]]`, `[[addresses]]`, and the check, once
  everything is read, that every destination leads somewhere.
- `tables` — `Table`, the typed getters every reader uses, and the `Problems` collector.
- `names` — what a well-formed domain, local part, user or mailbox name is.
- `units` — sizes (`10M`) and durations (`30m`) as written in the file.
- `errors` — `ConfigError` / `ConfigProblem`, and `KeyLocator` (a key path's line).

Layering: `loader` imports `listeners`, `directory` and `routing`, which import only
`model`, `names`, `tables` and `errors`; nothing imports `loader` back.
"""

from pymta.config.errors import ConfigError, ConfigProblem
from pymta.config.loader import load_config, parse_config

__all__ = ["ConfigError", "ConfigProblem", "load_config", "parse_config"]
