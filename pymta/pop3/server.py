"""The asyncio adapter around `Pop3Session`: socket, TLS, timeouts, connection gate, and the
streaming of message files.

One `Pop3Connection` per accepted socket, on `pymta.adapter.SessionConnection` (the gate,
read pausing, write flow control and the STLS swap shared with IMAP); its `_serve` loops
`next_event()` → write → act. Nothing here parses POP3. Works with the default loop and
uvloop (transports, `loop.start_tls`).

- Input is read only while the session waits for it: `data_received` pauses the
  transport while a command runs, so a client pipelining megabytes is held back by TCP,
  not buffered here (the line reader's limit bounds the rest).
- RETR and TOP: the message file is read in pieces on a worker thread (the first piece
  where it was opened), each piece written before the next is read, and the writer waits
  while the transport is above its high-water mark (`pause_writing`), so a slow client
  holds at most one piece and the transport's buffer of a message, never the whole.
- STLS: the line reader is emptied right before `loop.start_tls` swaps the protocol, so
  nothing the client sent in plaintext after the command is executed (RFC 2595 §4,
  CVE-2011-0411 class); plaintext arriving later is fed to the TLS handshake and fails it.
- Timeouts: `imap_login_timeout_s` before login (bending RFC 1939 §3's ten minutes for
  connections that have not authenticated, as Dovecot's login processes do),
  `imap_idle_timeout_s` after (at least 30 minutes, so above RFC 1939 §3's ten); the
  timer restarts whenever a command is awaited. On expiry the connection is closed
  without a reply and without UPDATE (RFC 1939 §3). A client that stops reading is given
  the same time to drain what was written.
- The gate refuses a connection over the limits with `-ERR [SYS/TEMP]`.
- `close_all()` ends every connection (a graceful stop: between commands, with
  `-ERR [SYS/TEMP] Server shutting down`); `busy` tells whether some command is running.
"""

from __future__ import annotations

import asyncio
import ssl

from pymta.adapter import SessionConnection, SessionListener

from .session import Action, Pop3Session
from .wire import MessageTransfer


class Pop3Connection(SessionConnection[Pop3Session]):
    protocol_name = "pop3"
    refusal = b"-ERR [SYS/TEMP] Too many connections\r\n"
    tls_command = "stls"

    def __init__(self, listener: SessionListener[Pop3Session]) -> None:
        super().__init__(listener)
        self._sending = False  # a message is being streamed

    async def _serve(self) -> None:
        assert self._session is not None
        session = self._session
        reason = "client closed"
        try:
            await self._write(session.greeting())
            while not self._closed:
                out = await session.next_event()
                if out.transfer is not None:
                    await self._send_message(out.data, out.transfer)
                elif out.data:
                    await self._write(out.data)
                action = out.action
                if action is Action.CLOSE:
                    reason = "quit"
                    break
                if action is Action.START_TLS:
                    await self._start_tls()
                    session.tls_started()
                elif action is Action.READ:
                    if await self._wait_input(self._timeout()):
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

    async def _send_message(self, status: bytes, transfer: MessageTransfer) -> None:
        """The status line and the message, piece by piece (see the module docstring)."""
        loop = asyncio.get_running_loop()
        self._sending = True
        try:
            await self._write(status + transfer.take_ready())
            while not transfer.finished:
                piece = await loop.run_in_executor(None, transfer.read)
                await self._write(piece)
        finally:
            self._sending = False
            transfer.close()

    @property
    def busy(self) -> bool:
        return self._sending or super().busy

    def _goodbye_allowed(self) -> bool:
        """No UPDATE at a server stop (RFC 1939 §6); a word only between commands, never
        inside a multi-line reply."""
        return not self.busy


class Pop3Listener(SessionListener[Pop3Session]):
    """One POP3 listener; `tls_context` is for STLS."""

    connection_class = Pop3Connection
