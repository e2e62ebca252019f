"""POP3 server (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH): a sans-I/O core plus
an asyncio adapter, built like `pymta.imap`.

- `framer.LineReader`: bytes → lines under a length limit (255 octets for commands,
  RFC 2449 §4; SASL responses may be longer).
- `grammar`: command lines and their numbers, one function per ABNF rule.
- `session.Pop3Session`: the state machine (AUTHORIZATION → TRANSACTION → UPDATE) and the
  one command table; bytes in, reply bytes plus "send this message" transfers out.
  Handlers: `login` (CAPA, STLS, USER/PASS, AUTH) and `transaction` (STAT, LIST, RETR,
  TOP, DELE, NOOP, RSET, UIDL, QUIT).
- `maildrop`: `MaildropLocks` (one per server, passed in) and `Maildrop`, the snapshot
  of the INBOX taken at login.
- `wire`: message files → CRLF, dot-stuffed multi-line bodies, piece by piece.
- `server.Pop3Listener`: the asyncio adapter (TLS, STLS, timeouts, gate, streaming).

Invariants:
- Only the user's INBOX is the maildrop. Message numbers, sizes and unique-ids are those of
  the snapshot taken at login and do not change during the session (RFC 1939 §5).
- One POP3 session per maildrop: a second one gets `-ERR [IN-USE]` (RFC 2449 §8.1.2); the
  lock is released when the session ends, however it ends. IMAP is never blocked by it;
  a message IMAP expunges meanwhile keeps its number, and RETR/TOP of it answer -ERR.
- Nothing changes in the store before QUIT: deletions (and \\Seen for retrieved messages)
  are applied in UPDATE only; a dropped connection, a timeout or a server stop change
  nothing (RFC 1939 §6).
- UIDL is Dovecot's default "%08Xu%08Xv": the IMAP UID and UIDVALIDITY in upper-case hex,
  so it is stable, agrees with IMAP and survives a move from Dovecot with its UIDs.
- Sizes (STAT, LIST, RETR) are CRLF sizes, and messages are sent with CRLF line ends and
  dot-stuffing; files are read in pieces on worker threads, never whole, never on the
  event loop; the writer respects the transport's flow control.
- No password over a connection without TLS unless the listener allows plaintext auth;
  every login goes through the shared `Authenticator` (throttling, logging).
"""
