"""The SEARCH / UID SEARCH handler (RFC 9051 §6.4.4; ESEARCH RFC 4731, SEARCHRES RFC 5182,
CONDSTORE MODSEQ RFC 7162 §3.1.5). Evaluation itself is `search.py`'s; this module feeds
it the index rows of the messages the session's view holds (one query, just the columns
the key reads) and writes SEARCH or ESEARCH responses."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING

from . import command as c
from .errors import Done, Refused
from .messages import read_message_file, view_rows
from .search import (
    Searcher,
    esearch_data,
    esearch_suppressed,
    needs_files,
    saved_result,
    search_columns,
    search_response,
)

if TYPE_CHECKING:
    from .session import ImapSession

# RFC 9051 §6.4.4: US-ASCII MUST be supported, and UTF-8 (RFC 6855 §3).
CHARSETS = ("US-ASCII", "UTF-8")


def uses_modseq(key: c.SearchKey) -> bool:
    if isinstance(key, c.SearchModseq):
        return True
    if isinstance(key, c.SearchAnd):
        return any(uses_modseq(k) for k in key.keys)
    if isinstance(key, c.SearchOr):
        return uses_modseq(key.left) or uses_modseq(key.right)
    if isinstance(key, c.SearchNot):
        return uses_modseq(key.key)
    return False


async def search(s: ImapSession, cmd: c.Search) -> Done | None:
    view = s.require_selected()
    if cmd.charset is not None and cmd.charset.upper() not in CHARSETS:
        # RFC 9051 §6.4.4: NO [BADCHARSET (supported charsets)].
        raise Refused("Charset not supported", "BADCHARSET (" + " ".join(CHARSETS) + ")")
    modseq = uses_modseq(cmd.key)
    if modseq:
        s.enable_condstore()  # RFC 7162 §3.1: SEARCH MODSEQ is CONDSTORE-enabling
    ref = s.user_ref()
    columns = search_columns(cmd.key)
    # The messages the client knows (new ones not announced yet have no number).
    rows = await view_rows(s, view, view.uids, columns)
    seqs = view.seqs_for([row[0] for row in rows])
    searcher = Searcher(clock=s.config.clock, reader=read_message_file)
    run = partial(
        searcher.search,
        cmd.key,
        rows,
        columns,
        seqs=seqs,
        directory=s.store.folder_path(ref, view.folder),
        max_seq=view.count,
        max_uid=view.last_uid,
        saved=s.saved_search or (),
    )
    result = await asyncio.to_thread(run) if needs_files(cmd.key) else run()
    numbers = result.uids if cmd.uid else result.seqs
    highest = result.highest_modseq if modseq else None
    options = cmd.return_options
    if options is None and s.rev2:
        options = ()  # RFC 9051 §6.4.4: rev2 answers SEARCH with ESEARCH (RETURN (ALL))
    if options is None:
        s.untagged(search_response(numbers, highest))
        return None
    to_save = saved_result(result, options)
    if to_save is not None:
        s.saved_search = to_save  # RFC 5182 §2.1
    if not esearch_suppressed(options):
        line = b'ESEARCH (TAG "%s")' % cmd.tag.encode()
        if cmd.uid:
            line += b" UID"
        data = esearch_data(numbers, options, highest)
        if data:
            line += b" " + data
        s.untagged(line)
    return None
