"""The command lines before aiosmtpd reads them, MAIL and RCPT above all: how long a line
may be (`command_size_limits`), an unclosed path (`unclosed_path`), the path parser aiosmtpd
calls through `InboundSMTP._getaddr` (`split_path`), and the DSN parameters (RFC 3461 §4)
taken out of the line (`take_dsn`). No I/O.

aiosmtpd upper-cases every parameter and knows none of the DSN ones, so `InboundSMTP` takes
them out before it sees them, leaving the path exactly as it came (RFC 3461 §5.2.1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import TypeVar

from pymta.smtp.message import path_is_closed

_P = TypeVar("_P")

# RFC 5321 §4.5.3.1.4 counts the CRLF in the 512 octets; aiosmtpd measures without it.
_CRLF = 2
# Octets the MAIL command line may grow by per extension we advertise: SIZE (RFC 1870 §5
# (5): 26), SMTPUTF8 (RFC 6531 §3.4: 10); RFC 6152 gives no number for BODY=8BITMIME, so
# room for " BODY=8BITMIME" (14).
# RFC 3461 §5.4 adds " RET=HDRS" (9) and " ENVID=" with up to 100 characters (107).
_MAIL_EXTENSION_BYTES = 26 + 10 + 14 + 9 + 107
# RFC 3461 §5.4: "530 characters for the ORCPT and NOTIFY parameters of the RCPT command";
# we allow " ORCPT=" with a 500-character value (507) and " NOTIFY=SUCCESS,FAILURE,DELAY"
# (29).
_RCPT_EXTENSION_BYTES = 507 + 29


class CommandLimits(dict[str, int]):
    """aiosmtpd's per-command line limits, per connection. (aiosmtpd keeps them in a
    class-level dict that every EHLO grows; this one is fixed and never grows.)"""

    def __init__(self, default: int, specific: dict[str, int]) -> None:
        super().__init__(specific)
        self._default = default

    def __missing__(self, command: str) -> int:
        return self._default

    @property
    def default(self) -> int:
        """The limit of every command not named."""
        return self._default


def command_size_limits(max_command_line_bytes: int) -> CommandLimits:
    """The line limits for aiosmtpd: `max_command_line_bytes` less the CRLF, and MAIL and
    RCPT longer by the parameters of the extensions we advertise."""
    command_bytes = max_command_line_bytes - _CRLF
    return CommandLimits(
        command_bytes,
        {
            "MAIL": command_bytes + _MAIL_EXTENSION_BYTES,
            "RCPT": command_bytes + _RCPT_EXTENSION_BYTES,
        },
    )


def split_path(arg: str, *, local_part_limit: int) -> tuple[str | None, str | None]:
    """aiosmtpd's path parser without the `typing.Protocol` class it defines on every
    call (a measurable cost per MAIL and RCPT): the path by the email package's RFC
    5322 parser, then the rest of the line (the parameters)."""
    if not arg:
        return "", ""
    parse = get_angle_addr if arg.lstrip().startswith("<") else get_addr_spec
    try:
        address, rest = parse(arg)
    except HeaderParseError:
        return None, None
    addr = str(address.addr_spec)
    if local_part_limit and len(addr.rpartition("@")[0]) > local_part_limit:
        return None, None
    return addr, str(rest)


def _strip_command_keyword(keyword: str, arg: str) -> str | None:
    """What follows "FROM:" / "TO:" (any case), stripped; None without it. aiosmtpd's own
    rule (`SMTP._strip_command_keyword`), so that `take_dsn` agrees with what it will do."""
    if arg[: len(keyword)].upper() == keyword:
        return arg[len(keyword) :].strip()
    return None


def unclosed_path(arg: str | None, keyword: str) -> bool:
    """A MAIL/RCPT argument whose path opens "<" and never closes it."""
    path = _strip_command_keyword(keyword, arg) if arg is not None else None
    return path is not None and not path_is_closed(path)


def take_dsn(
    arg: str,
    keyword: str,
    parameters: Iterable[str],
    parse: Callable[[Sequence[str]], tuple[_P, list[str]]],
    *,
    local_part_limit: int,
) -> tuple[str, _P | None]:
    """Take the DSN parameters out of a MAIL/RCPT argument (RFC 3461 §4).

    Returns the argument for aiosmtpd (the path as it came, then the other parameters)
    and what `parse` made of the DSN ones; None when aiosmtpd will refuse the path
    anyway, before it looks at any parameter. Raises `DsnParameterError`.
    """
    upper = arg.upper()
    if not any(name in upper for name in parameters):
        return arg, parse(())[0]  # the common case: no need to parse the path twice
    path = _strip_command_keyword(keyword, arg)
    if path is None:
        return arg, None
    address, rest = split_path(path, local_part_limit=local_part_limit)
    if not address or rest is None or not path.endswith(rest):
        return arg, None
    tokens = rest.split()
    requested, others = parse(tokens)
    if len(others) == len(tokens):
        return arg, requested  # nothing taken out: the line stays as it came
    # The path unchanged: ENVID/ORCPT are case-sensitive (RFC 3461 §5.2.1), and so is a
    # local part (RFC 5321 §2.4); aiosmtpd parses the rest as it would have.
    head = path[: len(path) - len(rest)].rstrip()
    return " ".join([keyword + head, *others]), requested
