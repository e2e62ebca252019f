"""The parameters of the mailbox commands: SELECT/EXAMINE's select-params (CONDSTORE,
QRESYNC), CREATE's USE, LIST's selection and return options and patterns, STATUS's items.

The rules follow grammar.py's conventions (one function per ABNF rule, a `Reader`,
`ParseError`); parser.py's command rules call them after the mailbox name. An unknown
parameter or option is an error, never ignored (RFC 4466 §2.1, RFC 5258 §3).
"""

from __future__ import annotations

from .command import QresyncParams, SequenceSet, StatusItems
from .grammar import Reader, atom, known_uids, list_mailbox, mod_sequence_value, nz_number

# RFC 6154 §2 use-attr, canonical spelling.
_USE_ATTRS = {
    a.upper(): a
    for a in ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
}
_SELECT_OPTIONS = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
_RETURN_OPTIONS = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"})
_STATUS_ATTS = frozenset(
    {
        "MESSAGES",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",  # RFC 9051
        "SIZE",  # RFC 8438
        "RECENT",  # RFC 3501
        "HIGHESTMODSEQ",  # RFC 7162
        "APPENDLIMIT",  # RFC 7889
    }
)


# -- SELECT / EXAMINE --------------------------------------------------------------------------


def select_params(r: Reader) -> tuple[bool, QresyncParams | None]:
    """select-params = SP "(" select-param *(SP select-param) ")" ;
    select-param =/ "CONDSTORE" / "QRESYNC" SP "(" uidvalidity SP mod-sequence-value
    [SP known-uids] [SP seq-match-data] ")"  (RFC 4466 §3, RFC 7162 §7). An unknown
    parameter is an error (RFC 4466 §2.1)."""
    r.expect(b"(", "'('")
    condstore = False
    qresync: QresyncParams | None = None
    if r.skip(b")"):
        return condstore, qresync  # "()": accepted as no parameters
    while True:
        name = r.keyword("a select parameter")
        if name == "CONDSTORE" and not condstore:
            condstore = True
        elif name == "QRESYNC" and qresync is None:
            r.sp()
            qresync = qresync_param(r)
        else:
            r.fail("unknown or repeated select parameter")
        if r.skip(b")"):
            return condstore, qresync
        r.sp()


def qresync_param(r: Reader) -> QresyncParams:
    """ "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")" ;
    seq-match-data = "(" known-sequence-set SP known-uid-set ")"  (RFC 7162 §7)"""
    r.expect(b"(", "'('")
    uidvalidity = nz_number(r)
    r.sp()
    modseq = mod_sequence_value(r)
    uids: SequenceSet | None = None
    match: tuple[SequenceSet, SequenceSet] | None = None
    if r.skip(b" "):
        more = True
        if r.peek() != 0x28:
            uids = known_uids(r)
            more = r.skip(b" ")
        if more:
            match = seq_match_data(r)
    r.expect(b")", "')'")
    return QresyncParams(uidvalidity, modseq, uids, match)


def seq_match_data(r: Reader) -> tuple[SequenceSet, SequenceSet]:
    """seq-match-data = "(" known-sequence-set SP known-uid-set ")"  (RFC 7162 §7)"""
    r.expect(b"(", "'('")
    seqs = known_uids(r)
    r.sp()
    uids = known_uids(r)
    r.expect(b")", "')'")
    return seqs, uids


# -- CREATE ------------------------------------------------------------------------------------


def use_attrs(r: Reader) -> tuple[str, ...]:
    """ "(" [use-attr *(SP use-attr)] ")" ; use-attr = "\\All" / "\\Archive" / "\\Drafts" /
    "\\Flagged" / "\\Junk" / "\\Sent" / "\\Trash" / use-attr-ext  (RFC 6154 §6)"""
    r.expect(b"(", "'('")
    uses: list[str] = []
    if not r.skip(b")"):
        while True:
            r.count()
            r.expect(b"\\", "a special-use attribute")
            name = "\\" + atom(r).decode("ascii")
            uses.append(_USE_ATTRS.get(name.upper(), name))
            if r.skip(b")"):
                break
            r.sp()
    return tuple(dict.fromkeys(uses))


# -- LIST --------------------------------------------------------------------------------------


def list_select_opts(r: Reader) -> tuple[str, ...]:
    """list-select-opts = "(" [(*(list-select-opt SP) list-select-base-opt
    *(SP list-select-opt)) / (list-select-independent-opt *(SP list-select-independent-opt))]
    ")" ; options SUBSCRIBED, REMOTE, RECURSIVEMATCH (RFC 5258 §6), SPECIAL-USE (RFC 6154 §6).
    An unknown option, or RECURSIVEMATCH without SUBSCRIBED, is an error (RFC 5258 §3)."""
    found = _option_list(r, _SELECT_OPTIONS)
    if "RECURSIVEMATCH" in found and "SUBSCRIBED" not in found:
        r.fail("RECURSIVEMATCH needs SUBSCRIBED")
    return found


def list_return_opts(r: Reader) -> tuple[tuple[str, ...], StatusItems | None]:
    """list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")" ;
    return-option = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE" / status-option ;
    status-option = "STATUS" SP "(" status-att *(SP status-att) ")"  (RFC 5258 §6,
    RFC 6154 §6, RFC 5819 §4). Returns the options (without STATUS) and the STATUS items."""
    r.expect(b"(", "'('")
    options: list[str] = []
    status_items: StatusItems | None = None
    if r.skip(b")"):
        return (), None
    while True:
        r.count()
        name = r.keyword("a return option")
        if name == "STATUS" and status_items is None:
            r.sp()
            status_items = status_att_list(r)
        elif name in _RETURN_OPTIONS:
            options.append(name)
        else:
            r.fail("unknown return option")
        if r.skip(b")"):
            return tuple(dict.fromkeys(options)), status_items
        r.sp()


def _option_list(r: Reader, known: frozenset[str]) -> tuple[str, ...]:
    r.expect(b"(", "'('")
    options: list[str] = []
    if r.skip(b")"):
        return ()
    while True:
        r.count()
        name = r.keyword("an option")
        if name not in known:
            r.fail("unknown option")
        options.append(name)
        if r.skip(b")"):
            return tuple(dict.fromkeys(options))
        r.sp()


def patterns(r: Reader) -> tuple[str, ...]:
    """patterns = "(" list-mailbox *(SP list-mailbox) ")"  (RFC 5258 §6)"""
    r.expect(b"(", "'('")
    r.count()
    found = [list_mailbox(r)]
    while r.skip(b" "):
        r.count()
        found.append(list_mailbox(r))
    r.expect(b")", "')'")
    return tuple(found)


# -- STATUS ------------------------------------------------------------------------------------


def status_att_list(r: Reader) -> StatusItems:
    """ "(" status-att *(SP status-att) ")" ; status-att = "MESSAGES" / "UIDNEXT" /
    "UIDVALIDITY" / "UNSEEN" / "DELETED" / "SIZE"  (RFC 9051 §9) plus RFC 3501's "RECENT",
    RFC 7162's "HIGHESTMODSEQ", RFC 7889's "APPENDLIMIT"."""
    r.expect(b"(", "'('")
    items: list[str] = []
    while True:
        r.count()
        name = r.keyword("a status item")
        if name not in _STATUS_ATTS:
            r.fail("unknown status item")
        items.append(name)
        if r.skip(b")"):
            return StatusItems(tuple(dict.fromkeys(items)))
        r.sp()
