"""pymta: a pure-Python mail server daemon (SMTP, submission, IMAP, POP3, ManageSieve)."""

__version__ = "0.1.0"
