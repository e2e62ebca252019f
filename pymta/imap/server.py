"""The asyncio adapter around `ImapSession`: socket, TLS, timeouts, connection gate.

One `ImapConnection` per accepted socket, on `pymta.adapter.SessionConnection` (the gate,
read pausing, write flow control and the STARTTLS swap shared with POP3); its `_serve`
loops `next_event()` → write → act. Nothing here parses IMAP. Works with the default loop
and uvloop (transports, `loop.start_tls`).

- Input is read only while the session waits for it: `data_received` pauses the
  transport while a command runs, so a client pipelining megabytes is held back by TCP,
  not buffered here (the framer's limits bound the rest).
- STARTTLS: the framer is emptied right before `loop.start_tls` swaps the protocol, so
  nothing the client sent in plaintext after the command is executed (RFC 9051 §6.2.1,
  CVE-2011-0411 class); plaintext arriving later is fed to the TLS handshake and fails it.
- Timeouts (RFC 9051 §5.4): `imap_login_timeout_s` before login, `imap_idle_timeout_s`
  after (IDLE included); then `* BYE` and close. A client that stops reading gets the
  same time to drain a response, then the connection is closed.
- The gate refuses a connection over the limits with `* BYE [UNAVAILABLE]`.
- `close_all()` says `* BYE` to every connection (a graceful stop); `busy` tells whether
  some command is running.
"""

from __future__ import annotations

import asyncio
import ssl

from pymta.adapter import SessionConnection, SessionListener

from .session import Action, ImapSession


class ImapConnection(SessionConnection[ImapSession]):
    protocol_name = "imap"
    refusal = b"* BYE [UNAVAILABLE] Too many connections\r\n"
    tls_command = "starttls"

    def __init__(self, listener: SessionListener[ImapSession]) -> None:
        super().__init__(listener)
        self._timer_start = 0.0  # loop time the autologout timer last started

    def _session_started(self, session: ImapSession) -> None:
        session.wakeup = self._wake.set
        session.writer = self._write

    async def _serve(self) -> None:
        assert self._session is not None
        session = self._session
        reason = "client closed"
        previous: Action | None = None
        try:
            await self._write(session.greeting())
            while not self._closed:
                out = await session.next_event()
                if out.data:
                    await self._write(out.data)
                action = out.action
                if action is Action.CLOSE:
                    reason = "logout"
                    break
                if action is Action.START_TLS:
                    await self._start_tls()
                    session.tls_started()
                elif action in (Action.READ, Action.IDLE):
                    # The autologout timer restarts when the server waits for a command,
                    # and when IDLE begins; updates sent during IDLE do not restart it
                    # (RFC 2177 §3: clients re-issue IDLE at least every 29 minutes).
                    if action is Action.READ or previous is not Action.IDLE:
                        self._timer_start = asyncio.get_running_loop().time()
                    previous = action
                    if await self._wait_input(self._time_left()):
                        continue
                    if not self._closed:
                        reason = "timeout"
                        await self._write(session.autologout())
                    break
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            reason = f"error {type(exc).__name__}"
        except asyncio.CancelledError:
            reason = "stopped"
            raise
        finally:
            session.close(reason)
            if self._transport is not None and not self._transport.is_closing():
                self._transport.close()

    def _time_left(self) -> float:
        """What remains of the autologout timer (RFC 9051 §5.4): waiting for input, or,
        while idling, for a change of the selected folder."""
        return self._timeout() - (asyncio.get_running_loop().time() - self._timer_start)


class ImapListener(SessionListener[ImapSession]):
    """One IMAP listener; `tls_context` is for STARTTLS."""

    connection_class = ImapConnection
