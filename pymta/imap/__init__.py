"""IMAP4rev1/rev2 server: sans-I/O core (framer, parser, session) plus asyncio adapter.

- `framer`: the client's byte stream cut into whole commands, literals inline, under the
  limits. `parser` (its public face) with `grammar`, `grammar_search`, `grammar_fetch` and
  `grammar_mailbox`: one command → one `command.Command` value, a function per ABNF rule.
- `session.ImapSession`: the state machine and its one command table; `errors` the three
  kinds of error. Handlers by feature: `login`, `connection`, `mailboxes` (with
  `listing`), `messages` (FETCH, STORE, EXPUNGE, COPY/MOVE, APPEND), `searching`, `quota`;
  `selected.SelectedMailbox` is a session's view of its folder, `capabilities` what it
  advertises.
- `fetch`: FETCH items compiled once into a `FetchPlan` and rendered from index rows;
  `fetch_sections` the items read from the message itself (RFC822, BODY[...],
  BINARY[...]): sections, BINARY decoding, line ends.
- `search`: SEARCH keys evaluated over index rows; `search_plan` the columns a key reads
  and what it costs; `search_results` the SEARCH / ESEARCH responses and what SAVE keeps.
  `rows`: what both share about index rows (the row type, the columns that locate a
  message's file, the default file reader).
- `wire`: response encoding. `server`: the asyncio adapter (socket, TLS, timeouts,
  connection gate).
"""
