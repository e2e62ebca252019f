"""The DSN parameters of MAIL and RCPT (RFC 3461 §4): the parsers in `smtp.dsn`, then SMTP
conversations with the inbound front end that use them."""

from __future__ import annotations

import asyncio
import smtplib

import pytest

from pymta.queue.model import DsnRequest, RcptDsn
from pymta.smtp import codes
from pymta.smtp.dsn import (
    DsnParameterError,
    MailDsn,
    envid_value,
    mail_parameters,
    notify_value,
    orcpt_value,
    rcpt_parameters,
    ret_value,
    xtext,
)
from pymta.smtp.handler import TransactionEnvelope
from pymta.smtp.server import InboundSMTP
from tests.unit.test_smtp_harness import MESSAGE, RunningServer, srv

__all__ = ["srv"]  # the fixture, imported for pytest


def refused(call: object, *args: object) -> DsnParameterError:
    with pytest.raises(DsnParameterError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


# -- xtext (RFC 3461 §4) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("", ""),
        ("abc", "abc"),
        ("a+2Bb", "a+b"),
        ("+3D", "="),
        ("a+20b", "a b"),
        ("!~", "!~"),
        ("+E9", "\xe9"),  # an octet, not a character: the callers check for ASCII
    ],
)
def test_xtext_decodes_hexchars(encoded: str, decoded: str) -> None:
    assert xtext(encoded) == decoded


@pytest.mark.parametrize(
    "bad",
    [
        "a+",  # "+" with nothing after it
        "a+2",  # one digit
        "a+2b",  # lower-case hex: "two upper case hexadecimal digits"
        "a+G0",
        "a=b",  # "=" is never an xchar
        "a b",  # SP
        "a\x7fb",  # DEL
        "caf\xe9",  # outside ASCII
    ],
)
def test_xtext_refuses_what_the_grammar_does_not_allow(bad: str) -> None:
    assert refused(xtext, bad).reply == codes.DSN_PARAMETER_SYNTAX


# -- RET (RFC 3461 §4.3) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"), [("FULL", "FULL"), ("hdrs", "HDRS"), ("Full", "FULL")]
)
def test_ret_in_any_case_is_stored_upper_case(value: str, stored: str) -> None:
    assert ret_value(value) == stored


@pytest.mark.parametrize("bad", ["", "HEADERS", "FULL,HDRS", "NONE"])
def test_ret_other_values_are_refused(bad: str) -> None:
    refused(ret_value, bad)


# -- ENVID (RFC 3461 §4.4) ------------------------------------------------------------------


def test_envid_is_kept_exactly_as_received() -> None:
    assert envid_value("Q+2Bx") == "Q+2Bx"  # not upper-cased, not decoded
    assert envid_value("a" * 100) == "a" * 100


@pytest.mark.parametrize(
    "bad",
    [
        "",  # MUST have a value
        "a" * 101,  # over 100 characters
        "a+0Db",  # decodes to CR: not printable US-ASCII
        "a+00",
        "a+E9",  # decodes to a non-ASCII octet
        "a=b",
        "a+2b",
    ],
)
def test_envid_bad_values_are_refused(bad: str) -> None:
    refused(envid_value, bad)


def test_envid_may_decode_to_a_space() -> None:
    assert envid_value("two+20words") == "two+20words"  # "printable (graphic and white space)"


# -- NOTIFY (RFC 3461 §4.1) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("NEVER", ("NEVER",)),
        ("never", ("NEVER",)),
        ("SUCCESS", ("SUCCESS",)),
        ("success,Failure,DELAY", ("SUCCESS", "FAILURE", "DELAY")),
        ("DELAY,FAILURE", ("DELAY", "FAILURE")),  # the order given
        ("FAILURE,FAILURE", ("FAILURE",)),  # each once
        ("SUCCESS,,DELAY", ("SUCCESS", "DELAY")),  # RFC 822 "#": empty elements allowed
    ],
)
def test_notify_forms(value: str, stored: tuple[str, ...]) -> None:
    assert notify_value(value) == stored


@pytest.mark.parametrize(
    "bad",
    ["", ",", "NEVER,SUCCESS", "SUCCESS,NEVER", "ALWAYS", "SUCCESS,SOMETIMES", "SUCCESS;DELAY"],
)
def test_notify_bad_values_are_refused(bad: str) -> None:
    refused(notify_value, bad)


# -- ORCPT (RFC 3461 §4.2) ------------------------------------------------------------------


def test_orcpt_is_kept_exactly_as_received() -> None:
    assert orcpt_value("rfc822;Bob+2BTag@Example.TEST") == "rfc822;Bob+2BTag@Example.TEST"
    assert orcpt_value("RFC822;b@x") == "RFC822;b@x"
    assert orcpt_value("utf-8;zo\\x{EB}@x.test") == "utf-8;zo\\x{EB}@x.test"  # RFC 6533 §3


def test_orcpt_up_to_500_characters() -> None:
    value = "rfc822;" + "a" * 491 + "@x"
    assert len(value) == 500
    assert orcpt_value(value) == value
    refused(orcpt_value, value + "x")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "bob@x",  # no addr-type
        ";bob@x",  # an empty addr-type
        "rfc 822;bob@x",
        "rfc(822);bob@x",  # not an atom
        "rfc822;",  # no address
        "rfc822;+20",  # only white space
        "rfc822;bob=x",  # not xtext
        "rfc822;bob+0A@x",  # decodes to LF
        "rfc822;b+C3+A9@x",  # decodes to UTF-8 octets: not US-ASCII
    ],
)
def test_orcpt_bad_values_are_refused(bad: str) -> None:
    refused(orcpt_value, bad)


# -- the parameter lists ----------------------------------------------------------------------


def test_mail_parameters_take_ret_and_envid_and_leave_the_rest_in_order() -> None:
    dsn, others = mail_parameters(["SIZE=10", "ret=full", "BODY=8BITMIME", "envid=Q+2Bx"])
    assert dsn == MailDsn(ret="FULL", envid="Q+2Bx")
    assert others == ["SIZE=10", "BODY=8BITMIME"]


def test_mail_parameters_without_dsn_ones() -> None:
    assert mail_parameters([]) == (MailDsn(), [])
    assert mail_parameters(["SMTPUTF8"]) == (MailDsn(), ["SMTPUTF8"])
    # NOTIFY and ORCPT are RCPT parameters: left to aiosmtpd, which refuses them (555).
    assert mail_parameters(["NOTIFY=NEVER"]) == (MailDsn(), ["NOTIFY=NEVER"])


def test_rcpt_parameters_take_notify_and_orcpt() -> None:
    dsn, others = rcpt_parameters(["Notify=success,delay", "ORCPT=rfc822;B+2Bc@X", "FOO"])
    assert dsn == RcptDsn(notify=("SUCCESS", "DELAY"), orcpt="rfc822;B+2Bc@X")
    assert others == ["FOO"]
    assert rcpt_parameters(["RET=FULL"]) == (RcptDsn(), ["RET=FULL"])


@pytest.mark.parametrize(
    ("parse", "tokens"),
    [
        (mail_parameters, ["RET=FULL", "RET=FULL"]),
        (mail_parameters, ["ENVID=a", "envid=b"]),
        (rcpt_parameters, ["NOTIFY=NEVER", "NOTIFY=NEVER"]),
        (rcpt_parameters, ["ORCPT=rfc822;a@x", "orcpt=rfc822;a@x"]),
    ],
)
def test_a_parameter_given_twice_is_refused(parse: object, tokens: list[str]) -> None:
    """RFC 3461 §4.5: "MUST NOT appear more than once"; the server SHOULD answer 501."""
    assert refused(parse, tokens).reply == codes.DSN_PARAMETER_REPEATED


@pytest.mark.parametrize(
    ("parse", "token"),
    [
        (mail_parameters, "RET"),
        (mail_parameters, "ENVID"),
        (mail_parameters, "RET="),
        (rcpt_parameters, "NOTIFY"),
        (rcpt_parameters, "ORCPT="),
    ],
)
def test_a_parameter_without_its_value_is_refused(parse: object, token: str) -> None:
    assert refused(parse, [token]).reply == codes.DSN_PARAMETER_SYNTAX


def test_the_envelope_hands_on_one_rcpt_dsn_per_address() -> None:
    envelope = TransactionEnvelope()
    envelope.ret, envelope.envid = "HDRS", "id1"
    envelope.rcpt_tos += ["a@x", "b@x", "a@x"]
    envelope.rcpt_dsn += [RcptDsn(("NEVER",)), RcptDsn(), RcptDsn(("SUCCESS",))]
    assert envelope.dsn_request() == DsnRequest(
        ret="HDRS",
        envid="id1",
        recipients={"a@x": RcptDsn(("NEVER",)), "b@x": RcptDsn()},  # the first RCPT wins
    )


# -- conversations (RFC 3461 §3, §5.1) --------------------------------------------------------


def the_envelope(srv: RunningServer) -> TransactionEnvelope:
    """The open transaction's envelope on the server side (one connection)."""
    [connection] = srv.listener._connections
    assert isinstance(connection, InboundSMTP)
    envelope = connection.envelope
    assert isinstance(envelope, TransactionEnvelope)
    return envelope


async def test_ehlo_offers_dsn(srv: RunningServer) -> None:
    c = await srv.connect()
    await c.send("EHLO client.example")
    [reply] = await c.expect("250-mx.example.test")
    assert "\r\n250-DSN" in reply or reply.endswith("\r\n250 DSN")


async def test_ret_and_envid_are_kept_with_their_case(srv: RunningServer) -> None:
    c = await srv.session()
    await c.send("MAIL FROM:<a@outside.test> RET=hdrs ENVID=Q+2Bx")
    await c.expect(codes.SENDER_OK)
    envelope = the_envelope(srv)
    assert (envelope.ret, envelope.envid) == ("HDRS", "Q+2Bx")
    assert envelope.mail_from == "a@outside.test"
    await c.send("RCPT TO:<alice@example.test>")
    await c.expect(codes.RECIPIENT_OK)
    await c.send("DATA")
    await c.expect("354 ")
    await c.send_raw(MESSAGE + b".\r\n")
    await c.expect("250 2.0.0 Ok: queued as ")
    [delivery] = srv.policy.deliveries
    assert delivery.dsn == DsnRequest(
        ret="HDRS", envid="Q+2Bx", recipients={"alice@example.test": RcptDsn()}
    )


async def test_notify_and_orcpt_are_kept_per_recipient(srv: RunningServer) -> None:
    c = await srv.session()
    await c.send("MAIL FROM:<a@outside.test>")
    await c.expect(codes.SENDER_OK)
    await c.send("RCPT TO:<alice@example.test> NOTIFY=success,Delay ORCPT=rfc822;Alice+2Bx@Ex")
    await c.expect(codes.RECIPIENT_OK)
    await c.send("RCPT TO:<unknown@example.test> NOTIFY=NEVER")  # refused: no entry kept
    await c.expect("550 5.1.1")
    await c.send("RCPT TO:<bob@example.test>")
    await c.expect(codes.RECIPIENT_OK)
    envelope = the_envelope(srv)
    assert envelope.rcpt_tos == ["alice@example.test", "bob@example.test"]
    assert envelope.rcpt_dsn == [
        RcptDsn(notify=("SUCCESS", "DELAY"), orcpt="rfc822;Alice+2Bx@Ex"),
        RcptDsn(),
    ]
    assert (envelope.ret, envelope.envid) == (None, None)


async def test_bad_dsn_parameters_get_501_and_the_session_goes_on(srv: RunningServer) -> None:
    c = await srv.session()
    for command in [
        "MAIL FROM:<a@outside.test> RET=SOME",
        "MAIL FROM:<a@outside.test> ENVID=a=b",
        "MAIL FROM:<a@outside.test> RET=FULL RET=HDRS",
        "MAIL FROM:<a@outside.test> ENVID",
    ]:
        await c.send(command)
        await c.expect("501 5.5.4 ")
    await c.send("MAIL FROM:<a@outside.test> RET=FULL ENVID=ok")
    await c.expect(codes.SENDER_OK)
    for command in [
        "RCPT TO:<alice@example.test> NOTIFY=NEVER,SUCCESS",
        "RCPT TO:<alice@example.test> NOTIFY=NEVER NOTIFY=NEVER",
        "RCPT TO:<alice@example.test> ORCPT=alice@example.test",
        "RCPT TO:<alice@example.test> ORCPT=rfc822;alice+0D+0A@example.test",
    ]:
        await c.send(command)
        await c.expect("501 5.5.4 ")
    await c.send("RCPT TO:<alice@example.test> NOTIFY=FAILURE")
    await c.expect(codes.RECIPIENT_OK)
    envelope = the_envelope(srv)
    assert envelope.rcpt_dsn == [RcptDsn(notify=("FAILURE",))]
    assert (envelope.ret, envelope.envid) == ("FULL", "ok")


async def test_the_other_parameters_still_reach_aiosmtpd(srv: RunningServer) -> None:
    c = await srv.session()
    await c.send("MAIL FROM:<a@outside.test> RET=FULL SIZE=1000 FOO=BAR")
    await c.expect("555 5.5.4 ")  # FOO is unknown, RET was fine
    await c.send("MAIL FROM:<a@outside.test> ENVID=x SIZE=99999999999")
    await c.expect(codes.MESSAGE_TOO_BIG)
    await c.send("MAIL FROM:<a@outside.test> ENVID=x BODY=BINARYMIME")
    await c.expect("501 5.5.4 ")
    await c.send("MAIL FROM:<A.Person@Outside.test> SIZE=10 ENVID=x BODY=8BITMIME")
    await c.expect(codes.SENDER_OK)
    assert the_envelope(srv).mail_from == "A.Person@Outside.test"  # the path untouched
    await c.send("RCPT TO:<alice@example.test> NOTIFY=NEVER FOO=BAR")
    await c.expect("555 5.5.4 ")
    assert the_envelope(srv).rcpt_dsn == []


async def test_dsn_parameters_with_the_null_sender(srv: RunningServer) -> None:
    c = await srv.session()
    await c.send("MAIL FROM:<> RET=HDRS ENVID=bounce1")
    await c.expect(codes.SENDER_OK)
    assert (the_envelope(srv).ret, the_envelope(srv).envid) == ("HDRS", "bounce1")


async def test_the_usual_order_of_errors_is_kept(srv: RunningServer) -> None:
    """DSN parameters are looked at only where aiosmtpd would look at parameters."""
    c = await srv.connect()
    await c.send("MAIL FROM:<a@outside.test> RET=bad")
    await c.expect(codes.NEED_HELO)  # before HELO/EHLO
    await c.send("EHLO client.example")
    await c.expect("250-")
    await c.send("RCPT TO:<alice@example.test> NOTIFY=bad")
    await c.expect(codes.NEED_MAIL)  # outside a transaction
    await c.send("MAIL FROM:<a@@outside.test> RET=bad")
    await c.expect("553 5.1.")  # the path first
    await c.send("MAIL FROM:<a@outside.test>")
    await c.expect(codes.SENDER_OK)
    await c.send("MAIL FROM:<a@outside.test> RET=bad")
    await c.expect(codes.NESTED_MAIL)
    assert the_envelope(srv).ret is None  # the nested MAIL changed nothing


async def test_rset_forgets_the_dsn_parameters(srv: RunningServer) -> None:
    c = await srv.session()
    await c.send("MAIL FROM:<a@outside.test> RET=FULL ENVID=x")
    await c.send("RCPT TO:<alice@example.test> NOTIFY=SUCCESS")
    await c.send("RSET")
    await c.expect(codes.SENDER_OK, codes.RECIPIENT_OK, "250 2.0.0")
    envelope = the_envelope(srv)
    assert (envelope.ret, envelope.envid, envelope.rcpt_dsn) == (None, None, [])


async def test_parameters_after_helo_are_refused_like_any_other(srv: RunningServer) -> None:
    """Without EHLO there are no service extensions (RFC 5321 §4.1.1.1); aiosmtpd answers
    501 to any parameter, and so do we for the DSN ones."""
    c = await srv.connect()
    await c.send("HELO client.example")
    await c.expect("250 mx.example.test")
    await c.send("MAIL FROM:<a@outside.test> RET=FULL")
    await c.expect("501 5.5.4 ")
    await c.send("MAIL FROM:<a@outside.test>")
    await c.expect(codes.SENDER_OK)
    await c.send("RCPT TO:<alice@example.test> NOTIFY=NEVER")
    await c.expect("501 5.5.4 ")
    await c.send("RCPT TO:<alice@example.test>")
    await c.expect(codes.RECIPIENT_OK)
    assert the_envelope(srv).rcpt_dsn == [RcptDsn()]


async def test_bdat_hands_on_the_dsn_parameters_too(srv: RunningServer) -> None:
    c = await srv.session()
    await c.send("MAIL FROM:<a@outside.test> ENVID=chunked")
    await c.send("RCPT TO:<alice@example.test> NOTIFY=SUCCESS ORCPT=rfc822;alice@example.test")
    await c.send(f"BDAT {len(MESSAGE)} LAST")
    await c.send_raw(MESSAGE)
    await c.expect(codes.SENDER_OK, codes.RECIPIENT_OK, "250 2.0.0 Ok: queued as ")
    [delivery] = srv.policy.deliveries
    assert delivery.dsn == DsnRequest(
        envid="chunked",
        recipients={
            "alice@example.test": RcptDsn(("SUCCESS",), "rfc822;alice@example.test"),
        },
    )


async def test_a_long_orcpt_fits_the_rcpt_line(srv: RunningServer) -> None:
    """RFC 3461 §5.4: RCPT lines up to 512 + 530 characters must be accepted."""
    orcpt = "rfc822;" + "a" * 491 + "@x"
    line = f"RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT={orcpt}"
    c = await srv.session()
    await c.send("MAIL FROM:<a@outside.test> RET=HDRS ENVID=" + "e" * 100)
    await c.expect(codes.SENDER_OK)
    await c.send(line)
    await c.expect(codes.RECIPIENT_OK)
    assert the_envelope(srv).rcpt_dsn[0].orcpt == orcpt


async def test_smtplib_sends_dsn_options(srv: RunningServer) -> None:
    def conversation() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=5) as client:
            client.ehlo("client.example")
            assert client.has_extn("dsn")
            return client.sendmail(
                "a@outside.test",
                ["alice@example.test", "bob@example.test"],
                MESSAGE,
                mail_options=["RET=FULL", "ENVID=Msg+2B1"],
                rcpt_options=["NOTIFY=SUCCESS,FAILURE"],
            )

    assert await asyncio.to_thread(conversation) == {}
    [delivery] = srv.policy.deliveries
    both = RcptDsn(notify=("SUCCESS", "FAILURE"))
    assert delivery.dsn == DsnRequest(
        ret="FULL",
        envid="Msg+2B1",
        recipients={"alice@example.test": both, "bob@example.test": both},
    )
