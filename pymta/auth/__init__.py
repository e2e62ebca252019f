"""Authentication: password hashes (argon2id, SHA512-CRYPT for migrated Dovecot users).

SASL mechanisms, master users and failed-login throttling arrive with the submission and
IMAP issues; they will live here and use `directory/` for who exists. A password or hash
never reaches a log line: hashes travel as `config.model.Secret`.
"""
