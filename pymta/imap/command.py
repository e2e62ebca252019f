"""IMAP commands as values: what the parser produces and the session consumes.

The contract between `parser.py` (bytes → these), `session.py` (state machine and
handlers), `search.py` (evaluates `SearchKey` trees) and `fetch.py` (renders `FetchItem`s).
Names follow the ABNF of RFC 9051 §9 (and the extensions' RFCs); mailbox names are
already decoded to unicode (modified UTF-7 for rev1 clients, UTF-8 under IMAP4rev2 /
UTF8=ACCEPT, RFC 9051 §5.1) but not yet validated against the store.
Every class is frozen: a parsed command never changes.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass, field

# -- sequence sets (RFC 9051 §9 sequence-set, RFC 5182 "$") ---------------------------------

STAR = None  # "*": the largest number in use (RFC 9051 §9 seq-number)


@dataclass(frozen=True)
class SeqRange:
    """`a:b` (or a lone number when first == last). None stands for "*"; the range is
    unordered as in the RFC ("4:2" is "2:4")."""

    first: int | None
    last: int | None


@dataclass(frozen=True)
class SequenceSet:
    ranges: tuple[SeqRange, ...] = ()
    saved: bool = False  # "$": the result saved by SEARCH RETURN (SAVE) (RFC 5182)


# -- search (RFC 9051 §6.4.4, §9 search-key; RFC 5032 WITHIN; RFC 7162 MODSEQ) ---------------


class SearchKey:
    """Base of the search key tree; `search.py` evaluates it."""


@dataclass(frozen=True)
class SearchAll(SearchKey):
    pass


@dataclass(frozen=True)
class SearchFlag(SearchKey):
    """ANSWERED DELETED DRAFT FLAGGED SEEN (present=True) and their UN- forms, RECENT/NEW/OLD
    map here too (flag "\\Recent"); KEYWORD/UNKEYWORD use the keyword as flag."""

    flag: str  # "\\Seen", "\\Answered", ... or a keyword atom
    present: bool = True


@dataclass(frozen=True)
class SearchHeader(SearchKey):
    """HEADER field string; also BCC CC FROM SUBJECT TO (field = that header name)."""

    field: str  # header name as given (compare case-insensitively)
    value: str  # substring, case-insensitive; "" matches every message with the field


@dataclass(frozen=True)
class SearchBody(SearchKey):
    text: str
    include_headers: bool = False  # TEXT searches header and body; BODY only the body


class DateField(enum.Enum):
    INTERNAL = "internal"  # BEFORE ON SINCE: the internal date
    SENT = "sent"  # SENTBEFORE SENTON SENTSINCE: the Date: header


class DateOp(enum.Enum):
    BEFORE = "before"
    ON = "on"
    SINCE = "since"


@dataclass(frozen=True)
class SearchDate(SearchKey):
    field: DateField
    op: DateOp
    date: datetime.date  # RFC 9051 §6.4.4: compared disregarding time and timezone


@dataclass(frozen=True)
class SearchSize(SearchKey):
    larger: bool  # LARGER n (True) / SMALLER n (False), RFC822.SIZE compared strictly
    size: int


@dataclass(frozen=True)
class SearchSequence(SearchKey):
    """A sequence set as a key (message sequence numbers), or UID <set> (uid=True)."""

    set: SequenceSet
    uid: bool = False


@dataclass(frozen=True)
class SearchNot(SearchKey):
    key: SearchKey


@dataclass(frozen=True)
class SearchOr(SearchKey):
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True)
class SearchAnd(SearchKey):
    """A parenthesised list, and the implicit AND of the top-level keys."""

    keys: tuple[SearchKey, ...]


@dataclass(frozen=True)
class SearchModseq(SearchKey):
    """MODSEQ [entry-name entry-type] mod-sequence-valzer (RFC 7162 §3.1.5): modseq ≥ value."""

    modseq: int


@dataclass(frozen=True)
class SearchWithin(SearchKey):
    """OLDER n / YOUNGER n (RFC 5032): internal date relative to now, in seconds."""

    older: bool
    seconds: int


class SearchReturn(enum.Enum):
    """ESEARCH return options (RFC 4731 / RFC 9051 §6.4.4.1, RFC 5182 SAVE)."""

    MIN = "MIN"
    MAX = "MAX"
    ALL = "ALL"
    COUNT = "COUNT"
    SAVE = "SAVE"


# -- fetch (RFC 9051 §6.4.5, §9 fetch-att; RFC 3516 BINARY; RFC 7162 MODSEQ) -----------------


class SectionText(enum.Enum):
    HEADER = "HEADER"
    HEADER_FIELDS = "HEADER.FIELDS"
    HEADER_FIELDS_NOT = "HEADER.FIELDS.NOT"
    TEXT = "TEXT"
    MIME = "MIME"


@dataclass(frozen=True)
class Section:
    """BODY[<part>.<text>] — `part` is the dotted part number ((), (1,), (1, 2)),
    `text` the section-msgtext / MIME, `fields` the HEADER.FIELDS(.NOT) list (upper-case)."""

    part: tuple[int, ...] = ()
    text: SectionText | None = None
    fields: tuple[str, ...] = ()


class FetchAttr(enum.Enum):
    FLAGS = "FLAGS"
    INTERNALDATE = "INTERNALDATE"
    RFC822_SIZE = "RFC822.SIZE"
    ENVELOPE = "ENVELOPE"
    BODY = "BODY"  # the non-extensible BODYSTRUCTURE
    BODYSTRUCTURE = "BODYSTRUCTURE"
    UID = "UID"
    MODSEQ = "MODSEQ"  # RFC 7162
    RFC822 = "RFC822"  # = BODY[] (sets \Seen)
    RFC822_HEADER = "RFC822.HEADER"  # = BODY.PEEK[HEADER]
    RFC822_TEXT = "RFC822.TEXT"  # = BODY[TEXT] (sets \Seen)
    BODY_SECTION = "BODY[]"  # BODY[section]<partial>, BODY.PEEK[...]
    BINARY = "BINARY[]"  # BINARY[part]<partial>, BINARY.PEEK (RFC 3516)
    BINARY_SIZE = "BINARY.SIZE[]"  # BINARY.SIZE[part] (RFC 3516)


@dataclass(frozen=True)
class FetchItem:
    attr: FetchAttr
    section: Section | None = None  # for BODY_SECTION, BINARY, BINARY_SIZE
    peek: bool = False  # BODY.PEEK / BINARY.PEEK: do not set \Seen
    partial: tuple[int, int] | None = None  # <offset.length>


# -- the commands ---------------------------------------------------------------------------


class Command:
    """Base of every command; `tag` is set by the parser."""

    tag: str


@dataclass(frozen=True)
class Capability(Command):
    tag: str


@dataclass(frozen=True)
class Noop(Command):
    tag: str


@dataclass(frozen=True)
class Logout(Command):
    tag: str


@dataclass(frozen=True)
class StartTls(Command):
    tag: str


@dataclass(frozen=True)
class Authenticate(Command):
    """AUTHENTICATE mechanism [initial-response] (RFC 9051 §6.2.2, SASL-IR RFC 4959).
    `initial_response` is decoded base64; b"" for "=" (an empty response); None if absent."""

    tag: str
    mechanism: str  # upper-case
    initial_response: bytes | None = field(default=None, repr=False)  # may hold a password


@dataclass(frozen=True)
class Login(Command):
    tag: str
    user: str
    password: str = field(repr=False)  # never printed


@dataclass(frozen=True)
class Enable(Command):
    tag: str
    capabilities: tuple[str, ...]  # upper-case


@dataclass(frozen=True)
class QresyncParams:
    """SELECT (QRESYNC (uidvalidity modseq [known-uids [(seq-match-data)]])) RFC 7162 §3.2.5."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None  # (seq numbers, uids)


@dataclass(frozen=True)
class Select(Command):
    tag: str
    mailbox: str
    readonly: bool = False  # EXAMINE
    condstore: bool = False  # (CONDSTORE) parameter, RFC 7162 §3.1.8
    qresync: QresyncParams | None = None


@dataclass(frozen=True)
class Create(Command):
    tag: str
    mailbox: str
    special_use: tuple[str, ...] = ()  # CREATE ... (USE (\Sent)) RFC 6154 §3


@dataclass(frozen=True)
class Delete(Command):
    tag: str
    mailbox: str


@dataclass(frozen=True)
class Rename(Command):
    tag: str
    old: str
    new: str


@dataclass(frozen=True)
class Subscribe(Command):
    tag: str
    mailbox: str
    subscribe: bool = True  # UNSUBSCRIBE: False


@dataclass(frozen=True)
class StatusItems:
    """STATUS data items (RFC 9051 §6.3.11, RFC 7162 HIGHESTMODSEQ, RFC 8438 SIZE)."""

    items: tuple[str, ...]  # upper-case: MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE
    # RECENT HIGHESTMODSEQ APPENDLIMIT


@dataclass(frozen=True)
class List(Command):
    """LIST [(selection-options)] reference mailbox-pattern(s) [RETURN (options)]
    (RFC 9051 §6.3.9, LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE RFC 6154).
    LSUB is List with lsub=True."""

    tag: str
    reference: str
    patterns: tuple[str, ...]
    selection: tuple[str, ...] = ()  # upper-case: SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE
    return_options: tuple[str, ...] = ()  # upper-case: SUBSCRIBED CHILDREN SPECIAL-USE
    status: StatusItems | None = None  # RETURN (STATUS (...))
    extended: bool = False  # the LIST-EXTENDED syntax was used
    lsub: bool = False


@dataclass(frozen=True)
class Namespace(Command):
    tag: str


@dataclass(frozen=True)
class Status(Command):
    tag: str
    mailbox: str
    items: StatusItems


@dataclass(frozen=True)
class AppendMessage:
    flags: tuple[str, ...]
    internal_date: datetime.datetime | None  # timezone-aware
    message: bytes = field(repr=False)
    utf8: bool = False  # UTF8 (literal8) form, RFC 6855 §4


@dataclass(frozen=True)
class Append(Command):
    """APPEND, with MULTIAPPEND (RFC 3502) several messages in one command."""

    tag: str
    mailbox: str
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True)
class Idle(Command):
    tag: str


@dataclass(frozen=True)
class Check(Command):
    tag: str


@dataclass(frozen=True)
class Close(Command):
    tag: str


@dataclass(frozen=True)
class Unselect(Command):
    tag: str


@dataclass(frozen=True)
class Expunge(Command):
    tag: str
    uids: SequenceSet | None = None  # UID EXPUNGE set (RFC 4315 §2.1)


@dataclass(frozen=True)
class Search(Command):
    tag: str
    key: SearchKey  # the top-level keys as one SearchAnd (or a single key)
    charset: str | None = None  # upper-case; only US-ASCII and UTF-8 are supported
    return_options: tuple[SearchReturn, ...] | None = None  # None: plain SEARCH response
    uid: bool = False


@dataclass(frozen=True)
class Fetch(Command):
    tag: str
    set: SequenceSet
    items: tuple[FetchItem, ...]  # macros ALL FAST FULL already expanded
    uid: bool = False
    changed_since: int | None = None  # (CHANGEDSINCE n) RFC 7162 §3.1.4
    vanished: bool = False  # (VANISHED) RFC 7162 §3.2.6, UID FETCH only


class StoreMode(enum.Enum):
    REPLACE = ""
    ADD = "+"
    REMOVE = "-"


@dataclass(frozen=True)
class Store(Command):
    tag: str
    set: SequenceSet
    mode: StoreMode
    flags: tuple[str, ...]
    silent: bool = False
    unchanged_since: int | None = None  # (UNCHANGEDSINCE n) RFC 7162 §3.1.3
    uid: bool = False


@dataclass(frozen=True)
class Copy(Command):
    """COPY, and MOVE (RFC 6851) with move=True."""

    tag: str
    set: SequenceSet
    mailbox: str
    uid: bool = False
    move: bool = False


@dataclass(frozen=True)
class Id(Command):
    """ID (RFC 2971): the client's parameters (None for NIL)."""

    tag: str
    params: tuple[tuple[str, str | None], ...] | None


@dataclass(frozen=True)
class GetQuota(Command):
    tag: str
    root: str


@dataclass(frozen=True)
class GetQuotaRoot(Command):
    tag: str
    mailbox: str


@dataclass(frozen=True)
class SetQuota(Command):
    """SETQUOTA (RFC 9208 §4.1.3): parsed so it can be refused properly (quota is config)."""

    tag: str
    root: str
    limits: tuple[tuple[str, int], ...]
