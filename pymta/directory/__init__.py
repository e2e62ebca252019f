"""Who exists: domains, users, groups, addresses, public mailboxes.

`model.Directory` is the interface every backend implements (`local.LocalDirectory` reads
the config; an LDAP backend comes later behind the same interface). A directory answers
one address at a time (`lookup`), one level deep: expanding aliases recursively, adding
catch-all and hidden copies, and deduplicating is the router's job (`delivery/`).
Directory objects are immutable snapshots: a SIGHUP reload builds a new one and swaps it in,
so a transaction in flight keeps a consistent view.
"""
