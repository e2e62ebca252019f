"""What the server advertises in CAPABILITY, the greeting and the LOGIN/AUTHENTICATE OK.

One function: the list depends only on the connection's state (TLS running, STARTTLS
offered, plaintext auth allowed on this listener, logged in) and the APPENDLIMIT.
"""

from __future__ import annotations

from dataclasses import dataclass

# Advertised in every state: the base protocols and what a client may use before login.
_ALWAYS = (
    "IMAP4rev1",  # RFC 3501
    "IMAP4rev2",  # RFC 9051
    "LITERAL+",  # RFC 7888
    "SASL-IR",  # RFC 4959
    "ID",  # RFC 2971
    "ENABLE",  # RFC 5161
    "IDLE",  # RFC 2177
)

# The extensions a logged-in session uses; advertised once logged in (RFC 9051 §6.1.1:
# the list may differ per state; clients ask again after login, or read the CAPABILITY
# response code of the tagged OK, §6.2.2/§6.2.3).
_AUTHENTICATED = (
    "NAMESPACE",  # RFC 2342
    "UNSELECT",  # RFC 3691
    "UIDPLUS",  # RFC 4315
    "CHILDREN",  # RFC 3348
    "ESEARCH",  # RFC 4731
    "SEARCHRES",  # RFC 5182
    "MOVE",  # RFC 6851
    "UTF8=ACCEPT",  # RFC 6855
    "LIST-EXTENDED",  # RFC 5258
    "LIST-STATUS",  # RFC 5819
    "SPECIAL-USE",  # RFC 6154
    "CREATE-SPECIAL-USE",  # RFC 6154 §3
    "CONDSTORE",  # RFC 7162
    "QRESYNC",  # RFC 7162
    "BINARY",  # RFC 3516
    "STATUS=SIZE",  # RFC 8438
    "QUOTA",  # RFC 9208
    "QUOTA=RES-STORAGE",  # RFC 9208 §5.1
    "WITHIN",  # RFC 5032
    "MULTIAPPEND",  # RFC 3502
)

AUTH_MECHANISMS = ("PLAIN", "LOGIN")  # RFC 4616, draft-murchison-sasl-login


@dataclass(frozen=True)
class CapabilityState:
    tls_active: bool
    starttls_available: bool  # the listener has a certificate and TLS is not running yet
    plaintext_auth_allowed: bool  # the listener allows LOGIN/AUTHENTICATE without TLS
    authenticated: bool
    append_limit: int  # max_message_bytes (RFC 7889 APPENDLIMIT)


def auth_allowed(state: CapabilityState) -> bool:
    """RFC 9051 §11.1 / §6.2.3: no password over a connection without TLS unless the
    listener explicitly allows it (loopback only, enforced by the config loader)."""
    return state.tls_active or state.plaintext_auth_allowed


def capabilities(state: CapabilityState) -> list[str]:
    caps = list(_ALWAYS)
    if state.authenticated:
        caps += _AUTHENTICATED
        caps.append(f"APPENDLIMIT={state.append_limit}")
        return caps
    if state.starttls_available and not state.tls_active:
        caps.append("STARTTLS")  # RFC 9051 §6.2.1: not once TLS runs
    if auth_allowed(state):
        caps += [f"AUTH={m}" for m in AUTH_MECHANISMS]
    else:
        caps.append("LOGINDISABLED")  # RFC 9051 §6.2.3, §7.2.2
    return caps


def capability_text(state: CapabilityState) -> str:
    return " ".join(capabilities(state))
