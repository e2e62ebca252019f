"""The config loader: TOML in, a checked `Config` out, or every problem with line and key path."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest

from pymta.config import units
from pymta.config.errors import ConfigError, ConfigProblem, KeyLocator
from pymta.config.loader import load_config, parse_config
from pymta.config.model import (
    DestinationRef,
    Limits,
    Protocol,
    QueueConfig,
    Secret,
    TlsMode,
)

REPO = Path(__file__).resolve().parents[2]

# A small valid config each test extends with the fragment under test.
BASE = """\
[server]
hostname = "mail.example.test"
data_dir = "data"

[tls]
cert_file = "server.pem"
key_file = "server.key"

[listeners.smtp]
protocol = "smtp"
addresses = ["127.0.0.1"]
port = 2525
tls = "starttls"

[[domains]]
name = "example.test"

[[directory.users]]
name = "alice"
domain = "example.test"
"""

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$k9XKgRrfuF5wAsFYl2sMQ0iTAHPr5s4kHzTa3wYP3ao"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return tmp_path / "pymta.toml"


def doc(fragment: str = "", base: str = BASE) -> str:
    return base + "\n" + textwrap.dedent(fragment)


def problems(text: str, source: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source=source)
    return info.value.problems


def only_problem(text: str, source: Path) -> ConfigProblem:
    [problem] = problems(text, source)
    return problem


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """The 1-based number of the nth line containing `needle`."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return found[nth - 1]


# --- files that must load ------------------------------------------------------------------


def test_dev_config_loads() -> None:
    config = load_config(REPO / "conf" / "dev.toml")

    assert config.server.hostname == "mail.example.test"
    assert config.server.data_dir == REPO / "var"
    assert config.server.shutdown_timeout_s == 10.0
    assert config.tls.cert_file == REPO / "certs" / "server.pem"
    smtp, submission, submissions, imap, imaps, pop3, pop3s = config.listeners
    assert [(x.name, x.protocol, x.port, x.tls) for x in (pop3, pop3s)] == [
        ("pop3", Protocol.POP3, 2110, TlsMode.STARTTLS),
        ("pop3s", Protocol.POP3, 2995, TlsMode.IMPLICIT),
    ]
    assert [(x.name, x.protocol, x.port, x.tls) for x in (submission, submissions)] == [
        ("submission", Protocol.SUBMISSION, 2587, TlsMode.STARTTLS),
        ("submissions", Protocol.SUBMISSION, 2465, TlsMode.IMPLICIT),
    ]
    assert [(x.name, x.protocol, x.port, x.tls) for x in (imap, imaps)] == [
        ("imap", Protocol.IMAP, 2143, TlsMode.STARTTLS),
        ("imaps", Protocol.IMAP, 2993, TlsMode.IMPLICIT),
    ]
    assert (smtp.name, smtp.protocol, smtp.addresses, smtp.port, smtp.tls) == (
        "smtp",
        Protocol.SMTP,
        ("127.0.0.1",),
        2525,
        TlsMode.STARTTLS,
    )
    assert [u.name for u in config.directory.users] == ["alice", "bob"]
    [info] = config.addresses
    assert (info.local_part, info.domain) == ("info", "example.test")
    assert info.destinations == (DestinationRef(user="alice"), DestinationRef(user="bob"))
    assert config.mailboxes.default_quota_bytes == 1024**3


def test_reference_config_loads() -> None:
    config = load_config(REPO / "conf" / "pymta.toml")

    assert config.listeners[0].port == 25


def test_minimal_config_takes_the_model_defaults(source: Path) -> None:
    config = parse_config(doc(), source=source)

    assert config.limits == Limits()
    assert config.queue == QueueConfig()
    assert config.source == source
    [alice] = config.directory.users
    assert alice.password_hash is None  # no hash: no login
    assert alice.enabled and alice.quota_bytes is None


def test_hostname_defaults_to_the_fqdn(source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getfqdn", lambda: "host.example.net")
    text = doc().replace('hostname = "mail.example.test"\n', "")

    assert parse_config(text, source=source).server.hostname == "host.example.net"


def test_load_config_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")

    [problem] = info.value.problems
    assert problem.line is None and "cannot read" in problem.message


def test_load_config_of_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "pymta.toml"
    path.write_bytes(b"[server]\n# caf\xe9\n")

    with pytest.raises(ConfigError) as info:
        load_config(path)

    [problem] = info.value.problems
    assert (problem.line, problem.message) == (2, "not UTF-8 text (expected a UTF-8 TOML file)")


def test_single_problem_error_found_after_loading(source: Path) -> None:
    error = ConfigError.single(source, "listeners.smtp.tls", "no certificate")

    assert str(error) == f"{source}: listeners.smtp.tls: no certificate"


# --- paths ---------------------------------------------------------------------------------


def test_relative_paths_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "pymta.toml").write_text(
        doc()
        .replace('data_dir = "data"', 'data_dir = "../var"')
        .replace('key_file = "server.key"', 'key_file = "/abs/server.key"')
    )
    monkeypatch.chdir(tmp_path / "..")  # the working directory must not matter

    config = load_config(etc / "pymta.toml")

    assert config.server.data_dir == tmp_path / "var"
    assert config.tls.cert_file == etc / "server.pem"
    assert config.tls.key_file == Path("/abs/server.key")


def test_data_dir_is_required(source: Path) -> None:
    text = doc().replace('data_dir = "data"\n', "")

    problem = only_problem(text, source)

    assert problem.key_path == "server.data_dir"
    assert problem.message.startswith("missing key")
    assert problem.line == line_of(text, "[server]")  # falls back to the table header


# --- the error report ----------------------------------------------------------------------


def test_error_text_is_file_line_key_path_message(source: Path) -> None:
    text = doc().replace("port = 2525", 'port = "2525"')

    with pytest.raises(ConfigError) as info:
        parse_config(text, source=source)

    line = line_of(text, "port =")
    assert str(info.value) == (
        f"{source}:{line}: listeners.smtp.port: wrong type: got string "
        "(expected an integer from 0 to 65535)"
    )


def test_every_problem_is_reported_in_file_order(source: Path) -> None:
    text = (
        doc(
            """
        [logging]
        level = "verbose"
        """
        )
        .replace("port = 2525", "port = 70000")
        .replace('name = "example.test"', 'name = "-bad-"')
    )

    found = problems(text, source)

    assert [p.key_path for p in found] == [
        "listeners.smtp.port",
        "domains[0].name",
        "directory.users[0].domain",  # its domain was refused, so it is unknown
        "logging.level",
    ]
    assert [p.line for p in found] == sorted(p.line or 0 for p in found)


def test_unknown_key(source: Path) -> None:
    text = doc().replace('protocol = "smtp"', 'protocol = "smtp"\nprotocl = "smtp"')

    problem = only_problem(text, source)

    assert problem.key_path == "listeners.smtp.protocl"
    assert problem.line == line_of(text, "protocl =")
    assert problem.message.startswith("unknown key (expected one of: protocol, address")


def test_unknown_key_in_the_second_array_table(source: Path) -> None:
    text = doc(
        """
        [[domains]]
        name = "example.org"
        catchall = "alice"
        """
    )

    problem = only_problem(text, source)

    assert (problem.key_path, problem.line) == ("domains[1].catchall", line_of(text, "catchall"))


def test_unknown_section(source: Path) -> None:
    text = doc("[metrix]\nport = 9100\n")

    problem = only_problem(text, source)

    assert (problem.key_path, problem.line) == ("metrix", line_of(text, "[metrix]"))


@pytest.mark.parametrize(
    ("fragment", "key_path", "expected"),
    [
        ("[logging]\nlevel = 3\n", "logging.level", '(expected one of "debug", "info"'),
        ("[limits]\nmax_connections = 1.5\n", "limits.max_connections", "an integer"),
        ("[limits]\nmax_connections = true\n", "limits.max_connections", "an integer"),
        ('[queue]\nretry_intervals = "1m"\n', "queue.retry_intervals", "array of durations"),
        ("[mailboxes]\ndefault_quota = 1.5\n", "mailboxes.default_quota", "(expected a size"),
        ('[directory]\nbackend = "ldap"\n', "directory.backend", 'one of "local"'),
    ],
)
def test_wrong_type_says_what_was_expected(
    source: Path, fragment: str, key_path: str, expected: str
) -> None:
    text = doc(fragment)

    problem = only_problem(text, source)

    assert problem.key_path == key_path
    assert problem.line == line_of(text, key_path.rpartition(".")[2] + " =")
    assert expected in problem.message


def test_a_table_where_an_array_of_tables_belongs(source: Path) -> None:
    text = BASE.replace("[[domains]]", "[domains]").replace('domain = "example.test"\n', "")

    found = problems(text, source)

    assert [(p.key_path, p.line) for p in found] == [
        ("domains", line_of(text, "[domains]")),
        ("directory.users[0].domain", line_of(text, "[[directory.users]]")),
    ]
    assert found[0].message == "wrong type: got table (expected an array of tables ([[domains]]))"


def test_a_value_where_a_table_belongs(source: Path) -> None:
    text = 'logging = "debug"\n' + BASE

    problem = only_problem(text, source)

    assert (problem.key_path, problem.line) == ("logging", 1)
    assert problem.message == "wrong type: got string (expected a table ([logging]))"


def test_wrong_type_of_a_boolean(source: Path) -> None:
    text = doc().replace('domain = "example.test"', 'domain = "example.test"\nenabled = "yes"')

    problem = only_problem(text, source)

    assert problem.key_path == "directory.users[0].enabled"
    assert problem.message == "wrong type: got string (expected true or false)"
    assert problem.line == line_of(text, "enabled =")


def test_toml_syntax_error_keeps_tomllib_line(source: Path) -> None:
    text = doc("[limits]\nmax_connections = = 3\n")

    problem = only_problem(text, source)

    assert problem.line == line_of(text, "max_connections")
    assert problem.key_path == ""
    assert problem.message.startswith("TOML syntax error: ")
    assert str(problem).startswith(f"{source}:{problem.line}: TOML syntax error")


# --- listeners -----------------------------------------------------------------------------


def test_malformed_bind_address(source: Path) -> None:
    text = doc().replace('addresses = ["127.0.0.1"]', 'addresses = ["127.0.0.1", "127.0.0.256"]')

    problem = only_problem(text, source)

    assert problem.key_path == "listeners.smtp.addresses[1]"
    assert problem.line == line_of(text, "addresses =")
    assert "malformed IP address '127.0.0.256'" in problem.message


def test_single_address_form_and_file_order(source: Path) -> None:
    text = doc(
        """
        [listeners.local]
        protocol = "smtp"
        address = "::1"
        port = 2526
        tls = "none"
        """
    )

    config = parse_config(text, source=source)

    assert [(x.name, x.addresses) for x in config.listeners] == [
        ("smtp", ("127.0.0.1",)),
        ("local", ("::1",)),
    ]


def test_address_and_addresses_are_exclusive(source: Path) -> None:
    text = doc().replace('addresses = ["127.0.0.1"]', 'address = "::1"\naddresses = ["127.0.0.1"]')

    problem = only_problem(text, source)

    assert (problem.key_path, problem.line) == (
        "listeners.smtp.address",
        line_of(text, "address ="),
    )


def test_two_listeners_on_one_address_and_port(source: Path) -> None:
    text = doc(
        """
        [listeners.other]
        protocol = "smtp"
        addresses = ["::1", "127.0.0.1"]
        port = 2525
        tls = "none"
        """
    )

    problem = only_problem(text, source)

    assert problem.key_path == "listeners.other.addresses[1]"
    assert problem.line == line_of(text, 'addresses = ["::1"')
    assert "listener 'smtp'" in problem.message


def test_wildcard_address_clashes_with_a_specific_one(source: Path) -> None:
    text = doc(
        """
        [listeners.all]
        protocol = "smtp"
        addresses = ["0.0.0.0", "::"]
        port = 2525
        tls = "none"
        """
    )

    assert [p.key_path for p in problems(text, source)] == ["listeners.all.addresses[0]"]


@pytest.mark.parametrize("addresses", ['["0.0.0.0"]', '["127.0.0.1", "192.0.2.1"]'])
def test_plaintext_auth_refused_off_loopback(source: Path, addresses: str) -> None:
    text = doc().replace('addresses = ["127.0.0.1"]', f"addresses = {addresses}")
    text = text.replace('tls = "starttls"', 'tls = "starttls"\nallow_plaintext_auth = true')

    problem = only_problem(text, source)

    assert problem.key_path == "listeners.smtp.allow_plaintext_auth"
    assert problem.line == line_of(text, "allow_plaintext_auth")
    assert "not a loopback address" in problem.message


def test_plaintext_auth_allowed_on_loopback(source: Path) -> None:
    text = doc().replace('addresses = ["127.0.0.1"]', 'addresses = ["127.0.0.1", "::1"]')
    text = text.replace('tls = "starttls"', 'tls = "none"\nallow_plaintext_auth = true')

    assert parse_config(text, source=source).listeners[0].allow_plaintext_auth


def test_tls_listener_needs_a_certificate(source: Path) -> None:
    text = doc().replace('cert_file = "server.pem"\nkey_file = "server.key"\n', "")

    problem = only_problem(text, source)

    assert problem.key_path == "listeners.smtp.tls"
    assert problem.line == line_of(text, 'tls = "starttls"')


def test_cert_file_without_key_file(source: Path) -> None:
    text = doc().replace('key_file = "server.key"\n', "")

    found = problems(text, source)

    assert [p.key_path for p in found] == ["tls.key_file", "listeners.smtp.tls"]
    assert found[0].line == line_of(text, "[tls]")


def test_port_out_of_range(source: Path) -> None:
    text = doc().replace("port = 2525", "port = 65536")

    problem = only_problem(text, source)

    assert problem.message == "65536 is out of range (expected an integer from 0 to 65535)"


# --- domains, addresses and destinations ---------------------------------------------------


def test_duplicate_domain(source: Path) -> None:
    text = doc('[[domains]]\nname = "Example.TEST"\n')

    problem = only_problem(text, source)

    assert problem.key_path == "domains[1].name"
    assert problem.line == line_of(text, 'name = "Example.TEST"')
    assert problem.message == "duplicate domain example.test (first in domains[0])"


@pytest.mark.parametrize("name", ["exa mple.test", "-x.test", "x..test", "bücher.test", "a_b.test"])
def test_malformed_domain(source: Path, name: str) -> None:
    text = doc(f'[[domains]]\nname = "{name}"\n')

    assert only_problem(text, source).key_path == "domains[1].name"


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("in fo@example.test", "malformed local part"),
        ("a..b", "malformed local part"),
        ("x" * 65, "longer than 64 octets"),
        ("info@example.org", "example.org is not one of ours"),
    ],
)
def test_malformed_address(source: Path, address: str, message: str) -> None:
    text = doc(f'[[addresses]]\naddress = "{address}"\ndestinations = ["alice"]\n')

    problem = only_problem(text, source)

    assert problem.key_path == "addresses[0].address"
    assert problem.line == line_of(text, "address =")
    assert message in problem.message


def test_address_forms(source: Path) -> None:
    text = doc(
        """
        [[addresses]]
        address = "Postmaster"
        destinations = ["ALICE"]

        [[addresses]]
        address = "info@Example.Test"
        destinations = ["postmaster@example.test", "Someone@Example.ORG"]
        internal = true
        """
    )

    postmaster, info = parse_config(text, source=source).addresses

    assert (postmaster.local_part, postmaster.domain) == ("postmaster", None)
    assert postmaster.destinations == (DestinationRef(user="alice"),)
    assert (info.local_part, info.domain, info.internal) == ("info", "example.test", True)
    assert info.destinations == (
        DestinationRef(address="postmaster@example.test"),
        DestinationRef(address="Someone@example.org"),  # a remote local part keeps its case
    )


def test_duplicate_address(source: Path) -> None:
    text = doc(
        """
        [[addresses]]
        address = "info@example.test"
        destinations = ["alice"]

        [[addresses]]
        address = "INFO@example.test"
        destinations = ["alice"]
        """
    )

    problem = only_problem(text, source)

    assert (problem.key_path, problem.line) == (
        "addresses[1].address",
        line_of(text, 'address = "INFO'),
    )


def test_address_needs_destinations(source: Path) -> None:
    text = doc('[[addresses]]\naddress = "info"\ndestinations = []\n')

    problem = only_problem(text, source)

    assert problem.key_path == "addresses[0].destinations"
    assert "at least one" in problem.message


def test_destination_points_to_nothing(source: Path) -> None:
    text = doc('[[addresses]]\naddress = "info"\ndestinations = ["alice", "nobody@example.test"]\n')

    problem = only_problem(text, source)

    assert problem.key_path == "addresses[0].destinations[1]"
    assert problem.line == line_of(text, "destinations =")
    assert problem.message.startswith("destination points to nothing")


def test_destinations_that_resolve(source: Path) -> None:
    text = doc(
        """
        [[domains]]
        name = "catch.test"
        add_user_addresses = false
        accept_unknown_recipients = true
        catch_all = "alice@example.test"

        [[public_mailboxes]]
        name = "Shared"

        [[addresses]]
        address = "team"
        destinations = ["alice@example.test", "help@example.test", "anything@catch.test"]

        [[addresses]]
        address = "help@example.test"
        destinations = ["public:Shared", "team@example.test", "friend@example.org"]

        [[addresses]]
        address = "sales"  # in example.test, the exact entry below wins
        destinations = ["sales@example.test"]

        [[addresses]]
        address = "sales@example.test"
        destinations = ["alice"]
        """
    )

    config = parse_config(text, source=source)

    assert config.domains[1].catch_all == DestinationRef(address="alice@example.test")


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("bob", "no user bob"),
        ("public:Nope", "no public mailbox Nope"),
        ("alice@catch.test", "points to nothing"),  # no user addresses in catch.test
        ("a b@example.org", "malformed destination"),
        ("alice@exa_mple.org", "malformed destination"),
        ("", "malformed destination"),
        ("loop@example.test", "cannot deliver to itself"),
    ],
)
def test_bad_destinations(source: Path, destination: str, message: str) -> None:
    text = doc(
        f"""
        [[domains]]
        name = "catch.test"
        add_user_addresses = false

        [[addresses]]
        address = "loop"
        destinations = ["{destination}"]
        """
    )

    problem = only_problem(text, source)

    assert problem.key_path == "addresses[0].destinations[0]"
    assert message in problem.message


def test_catch_all_needs_accept_unknown_recipients(source: Path) -> None:
    text = doc('[[domains]]\nname = "c.test"\nadd_user_addresses = false\ncatch_all = "alice"\n')

    problem = only_problem(text, source)

    assert (problem.key_path, problem.line) == ("domains[1].catch_all", line_of(text, "catch_all"))
    assert "accept_unknown_recipients = true" in problem.message


def test_accept_unknown_recipients_needs_a_catch_all(source: Path) -> None:
    text = doc(
        '[[domains]]\nname = "c.test"\nadd_user_addresses = false\n'
        "accept_unknown_recipients = true\n"
    )

    problem = only_problem(text, source)

    assert problem.key_path == "domains[1].accept_unknown_recipients"
    assert problem.line == line_of(text, "accept_unknown_recipients")
    assert "catch_all" in problem.message


def test_accept_unknown_recipients_needs_user_addresses_off(source: Path) -> None:
    text = doc(
        '[[domains]]\nname = "c.test"\naccept_unknown_recipients = true\ncatch_all = "alice"\n'
    )

    problem = only_problem(text, source)

    assert problem.key_path == "domains[1].accept_unknown_recipients"
    assert "add_user_addresses = false" in problem.message


def test_catch_all_into_its_own_domain_loops(source: Path) -> None:
    text = doc(
        '[[domains]]\nname = "c.test"\nadd_user_addresses = false\n'
        'accept_unknown_recipients = true\ncatch_all = "x@c.test"\n'
    )

    assert "points back" in only_problem(text, source).message


def test_copy_inbound_to(source: Path) -> None:
    text = doc().replace('name = "example.test"', 'name = "example.test"\ncopy_inbound_to = "bob"')

    problem = only_problem(text, source)

    assert (problem.key_path, problem.message) == (
        "domains[0].copy_inbound_to",
        "no user bob (expected a [[directory.users]] name)",
    )


# --- directory -----------------------------------------------------------------------------


def test_users_and_groups(source: Path) -> None:
    text = doc(
        f"""
        [[directory.users]]
        name = "Bob"
        domain = "EXAMPLE.test"
        password_hash = "{HASH}"
        enabled = false
        quota = "2G"
        groups = ["staff"]

        [[directory.groups]]
        name = "admins"
        members = ["alice", "bob"]
        """
    )

    directory = parse_config(text, source=source).directory

    alice, bob = directory.users
    assert (bob.name, bob.domain, bob.enabled, bob.quota_bytes) == (
        "bob",
        "example.test",
        False,
        2 * 1024**3,
    )
    assert bob.password_hash == Secret(HASH)
    # Membership is the same whichever side states it.
    assert alice.groups == ("admins",)
    assert bob.groups == ("staff", "admins")
    assert [(g.name, g.members) for g in directory.groups] == [
        ("admins", ("alice", "bob")),
        ("staff", ("bob",)),
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (".hidden", "may not start"),
        ("a..b", "'..'"),
        ("a/b", "malformed name"),
        ("x" * 65, "longer than 64"),
    ],
)
def test_bad_user_name(source: Path, name: str, message: str) -> None:
    text = doc(f'[[directory.users]]\nname = "{name}"\ndomain = "example.test"\n')

    problem = only_problem(text, source)

    assert problem.key_path == "directory.users[1].name"
    assert message in problem.message


def test_duplicate_user(source: Path) -> None:
    text = doc('[[directory.users]]\nname = "ALICE"\ndomain = "example.test"\n')

    problem = only_problem(text, source)

    assert (problem.key_path, problem.line) == (
        "directory.users[1].name",
        line_of(text, 'name = "ALICE"'),
    )


def test_user_domain_must_be_ours(source: Path) -> None:
    text = doc().replace('domain = "example.test"', 'domain = "example.org"')

    problem = only_problem(text, source)

    assert problem.key_path == "directory.users[0].domain"
    assert "(expected one of the [[domains]]: example.test)" in problem.message


def test_group_member_must_be_a_user(source: Path) -> None:
    text = doc('[[directory.groups]]\nname = "staff"\nmembers = ["alice", "carol"]\n')

    problem = only_problem(text, source)

    assert problem.key_path == "directory.groups[0].members[1]"
    assert problem.line == line_of(text, "members =")


def test_public_mailboxes(source: Path) -> None:
    text = doc(
        """
        [[public_mailboxes]]
        name = "Shared"
        quota = "10M"

        [[public_mailboxes]]
        name = "shared"

        [[public_mailboxes]]
        name = ".hidden"
        """
    )

    found = problems(text, source)

    assert [(p.key_path, p.line) for p in found] == [
        ("public_mailboxes[1].name", line_of(text, 'name = "shared"')),
        ("public_mailboxes[2].name", line_of(text, 'name = ".hidden"')),
    ]


# --- secrets -------------------------------------------------------------------------------


def test_password_hash_never_appears_in_errors(source: Path) -> None:
    bcrypt = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"
    text = doc(
        f"""
        [[directory.users]]
        name = "bob"
        domain = "example.test"
        password_hash = "{bcrypt}"
        pasword = "{HASH}"
        """
    )

    with pytest.raises(ConfigError) as info:
        parse_config(text, source=source)

    report = str(info.value)
    assert "directory.users[1].password_hash: not a supported password hash" in report
    assert bcrypt not in report and "R9h/cIPz0gi" not in report
    assert HASH not in report and "c2FsdHNhbHRzYWx0" not in report


def test_password_hash_never_appears_in_the_config_repr(source: Path) -> None:
    text = doc().replace(
        'domain = "example.test"', f'domain = "example.test"\npassword_hash = "{HASH}"'
    )

    config = parse_config(text, source=source)

    assert config.directory.users[0].password_hash == Secret(HASH)
    assert "c2FsdHNhbHRzYWx0" not in repr(config) and "c2FsdHNhbHRzYWx0" not in str(config)


# --- sizes, durations, limits --------------------------------------------------------------


def test_bad_size(source: Path) -> None:
    text = doc('[mailboxes]\ndefault_quota = "10X"\n')

    problem = only_problem(text, source)

    assert problem.key_path == "mailboxes.default_quota"
    assert problem.line == line_of(text, "default_quota")
    assert problem.message.startswith("malformed size '10X' (expected a size")


def test_bad_duration(source: Path) -> None:
    text = doc('[queue]\nmax_age = "5 fortnights"\nretry_intervals = ["1m",\n  "soon"]\n')

    found = problems(text, source)

    assert [(p.key_path, p.line) for p in found] == [
        ("queue.max_age", line_of(text, "max_age")),
        ("queue.retry_intervals[1]", line_of(text, "retry_intervals")),
    ]
    assert "malformed duration 'soon'" in found[1].message


def test_sizes_and_durations_in_their_units(source: Path) -> None:
    text = doc(
        """
        [queue]
        retry_intervals = ["30s", 90, "1h30m"]
        max_age = "1w"

        [limits]
        max_message_size = "25MB"
        command_timeout = "4m"
        """
    ).replace('data_dir = "data"', 'data_dir = "data"\nshutdown_timeout = 2.5')

    config = parse_config(text, source=source)

    assert config.server.shutdown_timeout_s == 2.5
    assert config.queue.retry_intervals_s == (30.0, 90.0, 5400.0)
    assert config.queue.max_age_s == 7 * 86400.0
    assert config.limits.max_message_bytes == 25 * 1024**2
    assert config.limits.command_timeout_s == 240.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("max_recipients = 99", "(expected an integer of at least 100)"),  # RFC 5321 §4.5.3.1.8
        ("max_command_line_bytes = 511", "at least 512"),  # RFC 5321 §4.5.3.1.4
        ("max_line_bytes = 999", "at least 1000"),  # RFC 5321 §4.5.3.1.6
        ("max_connections = 0", "at least 1"),
        ("max_connections_per_ip = -1", "at least 1"),
        ("idle_timeout = 0", "duration is zero"),
        ("data_timeout = -5", "out of range"),
        ("max_message_size = 0", "too small"),
    ],
)
def test_limits_have_floors(source: Path, line: str, message: str) -> None:
    text = doc(f"[limits]\n{line}\n")

    problem = only_problem(text, source)

    assert problem.key_path == "limits." + line.split(" ")[0]
    assert message in problem.message


# --- units ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (0, 0),
        (1234, 1234),
        ("500", 500),
        ("10K", 10 * 1024),
        ("10k", 10 * 1024),
        ("10KB", 10 * 1024),
        ("10 KiB", 10 * 1024),
        ("10M", 10 * 1024**2),
        ("1G", 1024**3),
        ("1GB", 1024**3),
        ("1T", 1024**4),
        ("64B", 64),
    ],
)
def test_parse_size(value: int | str, size: int) -> None:
    assert units.parse_size(value) == size


@pytest.mark.parametrize("value", [-1, "", "1.5G", "10X", "G", "1 0M", "-5"])
def test_parse_size_refuses(value: int | str) -> None:
    with pytest.raises(ValueError, match="expected a size"):
        units.parse_size(value)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (2.5, 2.5),
        ("90", 90.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("4h", 14400.0),
        ("5d", 432000.0),
        ("1w", 604800.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        ("1.5h", 5400.0),
    ],
)
def test_parse_duration(value: float | str, seconds: float) -> None:
    assert units.parse_duration(value) == seconds


@pytest.mark.parametrize("value", [-1, float("inf"), float("nan"), "", "5y", "m", "1h 30", "-5s"])
def test_parse_duration_refuses(value: float | str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        units.parse_duration(value)


# --- the line locator ----------------------------------------------------------------------


def test_locator_counts_array_tables_and_follows_nesting() -> None:
    text = textwrap.dedent(
        """\
        # a comment with [[domains]] in it
        [[domains]]
        name = "a"
        [[domains]]
        name = "b"
        [[directory.users]]
        name = "u0"
        [directory]
        backend = "local"
        [[directory.users]]
        "name" = "u1"
        [listeners.smtp]
        port = 25
        tls.mode = "x"
        """
    )
    locate = KeyLocator(text).line_of

    assert locate(("domains", 1, "name")) == 5
    assert locate(("domains", 1)) == 4
    assert locate(("directory", "users", 1, "name")) == 11
    assert locate(("directory", "backend")) == 9
    assert locate(("listeners", "smtp", "port")) == 13
    assert locate(("listeners", "smtp", "tls", "mode")) == 14
    assert locate(("listeners",)) == 12
    assert locate(("listeners", "smtp", "nothing", 3)) == 12  # falls back to the header
    assert locate(("logging", "level")) is None


def test_locator_skips_multi_line_values() -> None:
    text = textwrap.dedent(
        '''\
        [server]
        motd = """
        port = 1
        """
        list = [
          "x", # ]
          "y = 2",
        ]
        port = 25
        '''
    )
    locate = KeyLocator(text).line_of

    assert locate(("server", "port")) == 9
    assert locate(("server", "list")) == 5


# -- [queue] smarthost ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("smtp.provider.example", ("smtp.provider.example", 25)),
        ("smtp.provider.example:587", ("smtp.provider.example", 587)),
        ("[smtp.provider.example]:2525", ("smtp.provider.example", 2525)),
        ("[2001:db8::1]:587", ("2001:db8::1", 587)),
    ],
)
def test_relay_host_forms(source: Path, value: str, expected: tuple[str, int]) -> None:
    config = parse_config(doc(f'[queue]\nrelay_host = "{value}"\n'), source=source)

    assert config.queue.relay_host == expected
    assert config.queue.relay_user is None


@pytest.mark.parametrize("value", ["host:smtp", "host:0", "[host]:99999", ":25", "a b"])
def test_malformed_relay_host(source: Path, value: str) -> None:
    problem = only_problem(doc(f'[queue]\nrelay_host = "{value}"\n'), source)

    assert problem.key_path == "queue.relay_host"
    assert "malformed relay host" in problem.message


def test_relay_credentials_need_each_other_and_a_host(source: Path) -> None:
    alone = only_problem(doc('[queue]\nrelay_host = "h"\nrelay_user = "u"\n'), source)
    assert alone.key_path == "queue.relay_user"
    assert "go together" in alone.message
    hostless = only_problem(doc('[queue]\nrelay_user = "u"\nrelay_password = "p"\n'), source)
    assert "needs relay_host" in hostless.message


def test_relay_password_is_never_quoted_or_printed(source: Path) -> None:
    problem = only_problem(doc("[queue]\nrelay_password = 12345678\n"), source)
    assert "12345678" not in str(problem)
    config = parse_config(
        doc('[queue]\nrelay_host = "h:587"\nrelay_user = "u"\nrelay_password = "hunter22"\n'),
        source=source,
    )
    assert config.queue.relay_password is not None
    assert config.queue.relay_password.reveal() == "hunter22"
    assert "hunter22" not in repr(config.queue)
