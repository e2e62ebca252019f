"""Shared message parsing: pure functions over message bytes.

- `summary.summarize(raw)` computes what the store caches in its index for IMAP: the
  ENVELOPE and BODYSTRUCTURE (RFC 9051 §7.5.2) as JSON-able nested lists, the byte span of
  every IMAP section (for BODY[section] fetches), and a few header fields.
- `envelope` reads RFC 5322 headers and address lists into the ENVELOPE.
- `bodystructure` walks the MIME tree (RFC 2045/2046) into BODYSTRUCTURE and part spans;
  `body_without_extensions` gives the FETCH BODY form.
- `headers` holds the byte-level scanning: header blocks, unfolding, MIME fields, RFC 2231.
- `imapform` renders the cached ENVELOPE / BODY / BODYSTRUCTURE as IMAP wire bytes, once,
  at delivery (the store keeps them, so FETCH is a concatenation).
- `text` gives the forms SEARCH compares: RFC 2047-decoded, case-folded header values and
  the decoded text of body parts.

Invariants:
- Nothing here touches the disk, the network, a clock or global state; every function is
  safe to call from any thread.
- No input makes these functions raise or run away: nesting and part counts are capped
  (`bodystructure.MimeLimits`), work is linear in the message size per nesting level, and
  `summarize` falls back to a minimal summary if a bug ever raises.
- Header text is never RFC 2047-decoded (IMAP returns it as written); only `text`
  decodes, to compare, never to send. Bytes become str
  as UTF-8 when valid, else Latin-1, so every str is valid Unicode (JSON/SQLite-safe).
- Offsets are into the stored bytes; sizes and line counts are those of the message as
  IMAP sends it, with CRLF line ends (equal to the stored sizes for CRLF mail).
"""
