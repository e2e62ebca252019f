"""SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) exchanges as transcripts:
the server's challenges and the client's lines, base64 as on the wire."""

from __future__ import annotations

from base64 import b64encode

import pytest

from pymta.auth.sasl import (
    Challenge,
    Credentials,
    Failure,
    FailureReason,
    SaslError,
    SaslServer,
    decode_initial_response,
)


def b64(data: bytes) -> bytes:
    return b64encode(data)


# -- PLAIN ------------------------------------------------------------------------------------


def test_plain_with_initial_response() -> None:
    """RFC 4959 §3: C: a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA== (decoded by the parser)."""
    step = SaslServer().start("PLAIN", b"\x00alice\x00secret")
    assert step == Credentials("", "alice", "secret")
    assert "secret" not in repr(step)


def test_plain_without_initial_response_gets_an_empty_challenge() -> None:
    server = SaslServer()
    step = server.start("plain", None)
    assert step == Challenge(b"") and step.wire == b""  # S: "+ " (IMAP) / "334 " (SMTP)
    assert server.step(b64(b"alice\x00alice\x00s\xc3\xa9same")) == Credentials(
        "alice", "alice", "s\u00e9same"
    )


def test_plain_authzid_must_be_empty_or_the_authcid() -> None:
    assert SaslServer().start("PLAIN", b"ALICE\x00alice\x00pw") == Credentials(
        "ALICE", "alice", "pw"
    )
    assert SaslServer().start("PLAIN", b"bob\x00alice\x00pw") == Failure(FailureReason.AUTHZID)


@pytest.mark.parametrize(
    "message",
    [
        b"",  # RFC 4959 "=": an empty message is not a PLAIN message
        b"alice\x00pw",  # one NUL
        b"\x00alice\x00pw\x00extra",  # three
        b"\x00\x00pw",  # empty authcid
        b"\x00alice\x00",  # empty password
        b"\x00al\xffice\x00pw",  # not UTF-8
        b"\x00" + b"a" * 2000 + b"\x00pw",  # beyond every limit
    ],
)
def test_malformed_plain_messages(message: bytes) -> None:
    assert SaslServer().start("PLAIN", message) == Failure(FailureReason.MALFORMED)


# -- LOGIN ------------------------------------------------------------------------------------


def test_login_asks_username_then_password() -> None:
    server = SaslServer()
    step = server.start("LOGIN", None)
    assert step == Challenge(b"Username:") and step.wire == b"VXNlcm5hbWU6"
    step = server.step(b"YWxpY2U=")  # "alice"
    assert step == Challenge(b"Password:") and step.wire == b"UGFzc3dvcmQ6"
    assert server.step(b64(b"secret")) == Credentials("", "alice", "secret")


def test_login_with_the_user_name_as_initial_response() -> None:
    server = SaslServer()
    assert server.start("LOGIN", b"alice@example.test") == Challenge(b"Password:")
    assert server.step(b64(b"secret")) == Credentials("", "alice@example.test", "secret")


def test_login_refuses_an_empty_user_name_and_nul() -> None:
    assert SaslServer().start("LOGIN", b"") == Failure(FailureReason.MALFORMED)
    server = SaslServer()
    server.start("LOGIN", None)
    assert server.step(b64(b"al\x00ice")) == Failure(FailureReason.MALFORMED)


# -- cancellation, bad base64, misuse ---------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_star_cancels_the_exchange(mechanism: str) -> None:
    """RFC 9051 §6.2.2: "*" cancels; the server answers BAD."""
    server = SaslServer()
    assert isinstance(server.start(mechanism, None), Challenge)
    assert server.step(b"*") == Failure(FailureReason.CANCELLED)


@pytest.mark.parametrize(
    "line", [b"YWxpY2U", b"YW xpY2U=", b"YQ==YQ==", b"=", b"\xff", b"A" * 9000]
)
def test_invalid_base64_is_malformed(line: bytes) -> None:
    server = SaslServer()
    server.start("LOGIN", None)
    assert server.step(line) == Failure(FailureReason.MALFORMED)


def test_unknown_or_unoffered_mechanisms() -> None:
    assert SaslServer().start("CRAM-MD5", None) == Failure(FailureReason.UNSUPPORTED)
    assert SaslServer(("PLAIN",)).start("LOGIN", None) == Failure(FailureReason.UNSUPPORTED)


def test_steps_out_of_turn_are_a_caller_bug() -> None:
    server = SaslServer()
    with pytest.raises(SaslError):
        server.step(b"")
    server.start("PLAIN", b"\x00a\x00b")
    with pytest.raises(SaslError):
        server.step(b"")
    with pytest.raises(SaslError):
        server.start("PLAIN", None)


def test_initial_response_from_a_command_line() -> None:
    """SMTP AUTH / POP3 AUTH carry it as text: "=" is empty (RFC 4954 §4)."""
    assert decode_initial_response(b"=") == b""
    assert decode_initial_response(b"AGFsaWNlAHB3") == b"\x00alice\x00pw"
    with pytest.raises(ValueError):
        decode_initial_response(b"AGFsaWNlAHB")
