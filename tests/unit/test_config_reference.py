"""conf/pymta.toml documents every option of `pymta.config.model`, and nothing else.

The reference and the types must not drift: every field of every dataclass has its TOML key
in the right section of the reference (an option may be commented out, `# key = value`),
every key the reference shows is a field, the reference loads, and its values are the
model's defaults wherever the model has one.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

from pymta.config import model
from pymta.config.loader import load_config, parse_config

REFERENCE = Path(__file__).resolve().parents[2] / "conf" / "pymta.toml"

# Where each table-like dataclass lives in the file ("" is the top level).
SECTIONS: dict[type, str] = {
    model.Config: "",
    model.ServerConfig: "server",
    model.TlsConfig: "tls",
    model.ListenerConfig: "listeners.*",
    model.DomainConfig: "domains",
    model.DirectoryConfig: "directory",
    model.UserConfig: "directory.users",
    model.GroupConfig: "directory.groups",
    model.AddressConfig: "addresses",
    model.PublicMailboxConfig: "public_mailboxes",
    model.MailboxesConfig: "mailboxes",
    model.QueueConfig: "queue",
    model.Limits: "limits",
    model.LoggingConfig: "logging",
}

# Fields written under another key: the unit moves into the value ("30s", "10M"), and an
# address is one "local@domain" string.
RENAMED: dict[tuple[type, str], str] = {
    (model.ServerConfig, "shutdown_timeout_s"): "shutdown_timeout",
    (model.UserConfig, "quota_bytes"): "quota",
    (model.PublicMailboxConfig, "quota_bytes"): "quota",
    (model.MailboxesConfig, "default_quota_bytes"): "default_quota",
    (model.QueueConfig, "retry_intervals_s"): "retry_intervals",
    (model.QueueConfig, "max_age_s"): "max_age",
    (model.QueueConfig, "scan_interval_s"): "scan_interval",
    (model.QueueConfig, "delay_warning_s"): "delay_warning",
    (model.Limits, "command_timeout_s"): "command_timeout",
    (model.Limits, "data_timeout_s"): "data_timeout",
    (model.Limits, "idle_timeout_s"): "idle_timeout",
    (model.Limits, "imap_idle_timeout_s"): "imap_idle_timeout",
    (model.Limits, "imap_login_timeout_s"): "imap_login_timeout",
    (model.Limits, "auth_failure_delay_s"): "auth_failure_delay",
    (model.Limits, "auth_failure_window_s"): "auth_failure_window",
    (model.Limits, "max_message_bytes"): "max_message_size",
    (model.AddressConfig, "local_part"): "address",
    (model.AddressConfig, "domain"): "address",
}

# Fields that are no key at all.
NOT_KEYS: dict[tuple[type, str], str] = {
    (model.ListenerConfig, "name"): "the NAME of [listeners.NAME]",
    (model.Config, "source"): "the file itself",
}

# DestinationRef is a value, not a table: each of its fields is one string form.
DESTINATION_FORMS = {
    "user": r'"[a-z0-9._-]+"',
    "public": r'"public:[A-Za-z0-9._-]+"',
    "address": r'"[^"@\s]+@[^"@\s]+"',
}
DESTINATION_KEYS = ("catch_all", "copy_inbound_to", "destinations")

_HEADER = re.compile(r"\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?")
_KEY_LINE = re.compile(r"([A-Za-z0-9_]+)\s*=\s*(.*)")
# A commented-out option or example header: "# key = value", "# [table]", "# [[array]]".
_EXAMPLE_LINE = re.compile(r"# ?((?:\[\[?[a-z0-9_.]+\]\]?)|(?:[a-z_]+ = .*))")


def model_dataclasses() -> list[type]:
    return [
        cls
        for _, cls in inspect.getmembers(model, inspect.isclass)
        if dataclasses.is_dataclass(cls) and cls.__module__ == model.__name__
    ]


def reference_layout() -> tuple[set[str], set[tuple[str, str]], list[tuple[str, str]]]:
    """Headers, (section, key) pairs and (key, value) lines, commented-out ones included."""
    headers: set[str] = set()
    keys: set[tuple[str, str]] = set()
    values: list[tuple[str, str]] = []
    section = ""
    for raw in REFERENCE.read_text().splitlines():
        line = raw.strip().lstrip("#").strip()
        header = _HEADER.fullmatch(line)
        if header is not None:
            section = header[1]
            if section.startswith("listeners."):
                section = "listeners.*"
            headers.add(section)
            continue
        key = _KEY_LINE.match(line)
        if key is not None:
            keys.add((section, key[1]))
            values.append((key[1], key[2]))
    return headers, keys, values


def toml_key(cls: type, field: str) -> str:
    return RENAMED.get((cls, field), field)


def test_every_model_dataclass_has_a_place_in_the_reference() -> None:
    assert set(model_dataclasses()) == set(SECTIONS) | {model.DestinationRef}


def test_every_field_appears_in_its_section() -> None:
    headers, keys, _ = reference_layout()
    missing = []
    for cls, section in SECTIONS.items():
        for field in dataclasses.fields(cls):
            if (cls, field.name) in NOT_KEYS:
                continue
            key = toml_key(cls, field.name)
            subsection = f"{section}.{key}" if section else key
            as_table = subsection in headers or any(h.startswith(subsection + ".") for h in headers)
            if (section, key) not in keys and not as_table:
                missing.append(f"{cls.__name__}.{field.name} as [{section}] {key}")
    assert missing == []


def test_every_key_in_the_reference_is_a_field() -> None:
    _, keys, _ = reference_layout()
    known = {
        (section, toml_key(cls, field.name))
        for cls, section in SECTIONS.items()
        for field in dataclasses.fields(cls)
    }
    assert sorted(keys - known) == []


def test_every_destination_form_is_shown() -> None:
    assert {f.name for f in dataclasses.fields(model.DestinationRef)} == set(DESTINATION_FORMS)
    _, _, values = reference_layout()
    shown = " ".join(value for key, value in values if key in DESTINATION_KEYS)
    for form, pattern in DESTINATION_FORMS.items():
        assert re.search(pattern, shown), f"no {form} destination in the reference"


def test_reference_loads_with_production_settings() -> None:
    config = load_config(REFERENCE)

    assert config.server.data_dir == Path("/var/lib/pymta")
    assert config.tls.cert_file is not None and config.tls.key_file is not None
    assert config.tls.cert_file.is_relative_to("/etc/pymta")
    assert config.tls.key_file.is_relative_to("/etc/pymta")
    assert [(x.protocol, x.port, x.tls) for x in config.listeners] == [
        (model.Protocol.SMTP, 25, model.TlsMode.STARTTLS),
        (model.Protocol.IMAP, 143, model.TlsMode.STARTTLS),
        (model.Protocol.IMAP, 993, model.TlsMode.IMPLICIT),
        (model.Protocol.SUBMISSION, 587, model.TlsMode.STARTTLS),
        (model.Protocol.SUBMISSION, 465, model.TlsMode.IMPLICIT),
    ]
    assert not any(x.allow_plaintext_auth for x in config.listeners)
    assert [d.name for d in config.domains] == ["example.org"]
    [alice] = config.directory.users
    assert alice.password_hash is not None
    assert alice.password_hash.reveal().startswith("$argon2id$")
    postmaster = next(a for a in config.addresses if a.local_part == "postmaster")
    assert postmaster.domain is None  # RFC 5321 §4.5.1: in every domain


def test_reference_values_are_the_model_defaults() -> None:
    config = load_config(REFERENCE)

    assert config.limits == model.Limits()
    assert config.queue == model.QueueConfig()
    assert config.mailboxes == model.MailboxesConfig()
    assert config.logging == model.LoggingConfig()
    assert config.tls.min_version == model.TlsConfig().min_version
    assert config.server.shutdown_timeout_s == model.ServerConfig("h", Path()).shutdown_timeout_s
    [domain] = config.domains
    assert domain == model.DomainConfig(domain.name)


def test_commented_examples_are_valid_when_uncommented() -> None:
    lines = REFERENCE.read_text().splitlines()
    uncommented = []
    for line in lines:
        example = _EXAMPLE_LINE.fullmatch(line)
        uncommented.append(example[1] if example is not None else line)
    config = parse_config("\n".join(uncommented), source=REFERENCE)

    ports = {listener.port for listener in config.listeners}
    assert ports == {25, 587, 465, 143, 993, 110, 995, 4190}
    assert [d.name for d in config.domains] == ["example.org", "example.net"]
    assert config.domains[1].catch_all == model.DestinationRef(user="alice")
    assert [p.name for p in config.public_mailboxes] == ["Archive"]
    assert config.queue.relay_host == ("smtp.provider.example", 587)
    assert config.queue.relay_user == "example-org"
    assert config.server.hostname == "mail.example.org"
