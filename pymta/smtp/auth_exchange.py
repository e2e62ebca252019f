"""The AUTH command's exchange on the SMTP wire (RFC 4954 §4), over `auth.sasl`.

`InboundSMTP.smtp_AUTH` decides whether AUTH may run at all and what the authenticator's
answer means; `sasl_exchange` runs the dialogue between: the mechanism and initial response
from the command line, then "334" challenges and the client's answers until SASL ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pymta.auth.sasl import (
    Challenge,
    Credentials,
    FailureReason,
    SaslServer,
    decode_initial_response,
)
from pymta.smtp import codes
from pymta.smtp.codes import Reply

SASL_FAILURES: dict[FailureReason, Reply] = {
    FailureReason.CANCELLED: codes.AUTH_CANCELLED,  # RFC 4954 §4: "*" → 501
    FailureReason.MALFORMED: codes.AUTH_SYNTAX,
    FailureReason.UNSUPPORTED: codes.AUTH_MECHANISM,
    FailureReason.AUTHZID: codes.AUTH_FAILED,
}


async def sasl_exchange(
    arg: str | None,
    *,
    send: Callable[[str], Awaitable[None]],
    reader: asyncio.StreamReader,
) -> Credentials | Reply:
    """Run AUTH's SASL exchange: `arg` is the command's argument ("PLAIN <base64>"),
    `send` writes a challenge line as it is, `reader` gives the client's answers.

    Returns the credentials to check, or the reply that refuses the exchange. Raises
    `ConnectionResetError` when the input ends inside it.
    """
    mechanism, _, initial_text = (arg or "").strip().partition(" ")
    if not mechanism:
        return codes.PARAMETER_SYNTAX
    initial: bytes | None = None
    if initial_text:
        try:
            initial = decode_initial_response(initial_text.strip().encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return codes.AUTH_SYNTAX
    sasl = SaslServer()
    step = sasl.start(mechanism, initial)
    while isinstance(step, Challenge):
        # RFC 4954 §4: "334 " + base64 challenge; the client answers a line.
        await send("334 " + step.wire.decode("ascii"))
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise ConnectionResetError("end of input inside AUTH")
        step = sasl.step(line.rstrip(b"\r\n"))
    if not isinstance(step, Credentials):
        return SASL_FAILURES[step.reason]
    return step
