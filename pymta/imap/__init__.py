"""IMAP4rev1/rev2 server: sans-I/O core (framer, parser, session) plus asyncio adapter."""
