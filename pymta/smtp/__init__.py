"""The SMTP front end, built on aiosmtpd: inbound (port 25) and submission (587 / 465).

aiosmtpd owns the wire; `connection.InboundSMTP` is a small subclass adding BDAT, our
EHLO, enhanced status codes, timeouts and connection limits; `server.SmtpListener` makes
one per accepted socket and closes them all at a graceful stop. `handler.InboundHandler`
holds the policy in aiosmtpd's MAIL/RCPT/DATA hooks and calls the injected
`policy.InboundPolicy` (implemented by `delivery/`). `codes` names every reply; `message`
and `chunking` are pure functions (Received header, line endings, BDAT grammar); `bdat`
reads a BDAT chunk in slices; `txlog` writes the one log line per transaction.
`submission.SubmissionStage` adds, on submission listeners, the sender rule at MAIL and end
of DATA and DKIM signing before delivery; AUTH (PLAIN, LOGIN through `auth.sasl`, checked
by the injected authenticator) is `InboundSMTP.smtp_AUTH`, its SASL exchange on the wire
`auth_exchange`. `dsn` parses the RFC 3461 parameters (RET, ENVID on MAIL; NOTIFY, ORCPT on
RCPT), which `InboundSMTP` takes out of the command, case and all, before aiosmtpd sees it
(`commandline`, with the command line limits and the path parser); they ride on the
transaction's envelope (`handler.TransactionEnvelope`) to the policy.

Invariants:
- Only <CRLF>.<CRLF> ends DATA, and the content handed to the policy has every line
  ending as CRLF (no bare CR or LF: SMTP smuggling, CVE-2023-51764 class), with our
  Received header first.
- Every 2xx/4xx/5xx reply carries an enhanced status code, except the greeting and the
  replies to HELO/EHLO (RFC 2034 §3); reply texts are generic, details go to the log.
- Input pipelined after STARTTLS before the handshake is discarded, and the session
  starts over after it (RFC 3207 §4.2, CVE-2011-0411 class).
- A BDAT chunk is always read to its end, in slices, and kept only while the message is
  within `max_message_bytes`.
- AUTH is offered and accepted only over TLS (or on a loopback listener that allows
  plaintext AUTH), never on port 25 (RFC 4954 §4); a submission listener accepts no MAIL
  before AUTH (530 5.7.0).
- ENVID and ORCPT are kept exactly as received (xtext, case included: RFC 3461 §5.2.1);
  a bad or repeated DSN parameter is 501 5.5.4 and the session goes on.
- An exception escaping the policy ends the command with 451 4.3.0 and a logged
  reference, never the session. No message body or credential is ever logged.
"""
