"""The IMAP command parser: every command form of RFC 9051 §9 and the extensions, with the
exact value it produces; malformed input is a ParseError carrying the tag."""

from __future__ import annotations

import datetime
import time

import pytest

from pymta.imap.command import (
    Append,
    AppendMessage,
    Authenticate,
    Capability,
    Check,
    Close,
    Command,
    Copy,
    Create,
    DateField,
    DateOp,
    Delete,
    Enable,
    Expunge,
    Fetch,
    FetchAttr,
    FetchItem,
    GetQuota,
    GetQuotaRoot,
    Id,
    Idle,
    List,
    Login,
    Logout,
    Namespace,
    Noop,
    QresyncParams,
    Rename,
    Search,
    SearchAll,
    SearchAnd,
    SearchBody,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchModseq,
    SearchNot,
    SearchOr,
    SearchReturn,
    SearchSequence,
    SearchSize,
    SearchWithin,
    Section,
    SectionText,
    Select,
    SeqRange,
    SequenceSet,
    SetQuota,
    StartTls,
    Status,
    StatusItems,
    Store,
    StoreMode,
    Subscribe,
    Unselect,
)
from pymta.imap.parser import (
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_SEQUENCE_RANGES,
    ParseError,
    authenticate_response,
    idle_done,
    parse_command,
)

STAR = None


def parse(data: bytes, *, utf8: bool = False) -> Command:
    return parse_command(data, utf8_names=utf8)


def seq(*ranges: tuple[int | None, int | None] | int | None) -> SequenceSet:
    out = []
    for r in ranges:
        out.append(SeqRange(r[0], r[1]) if isinstance(r, tuple) else SeqRange(r, r))
    return SequenceSet(tuple(out))


def item(attr: FetchAttr, **kw: object) -> FetchItem:
    return FetchItem(attr, **kw)  # type: ignore[arg-type]


UTC = datetime.UTC

# -- every command form, with its value --------------------------------------------------------

CASES: list[tuple[bytes, Command]] = [
    # command-any, command-nonauth
    (b"a1 CAPABILITY", Capability("a1")),
    (b"a1 noop", Noop("a1")),
    (b"A.2 LOGOUT", Logout("A.2")),
    (b"t] STARTTLS", StartTls("t]")),
    (b"a AUTHENTICATE plain", Authenticate("a", "PLAIN")),
    (b"a AUTHENTICATE PLAIN AGZyZWQAcGFzcw==", Authenticate("a", "PLAIN", b"\0fred\0pass")),
    (b"a AUTHENTICATE PLAIN =", Authenticate("a", "PLAIN", b"")),
    (b"a LOGIN fred secret", Login("a", "fred", "secret")),
    (b'a LOGIN "fred smith" "se\\"c\\\\ret"', Login("a", "fred smith", 'se"c\\ret')),
    (b"a LOGIN {4}\r\nfred {6+}\r\np\xc3\xa4sse", Login("a", "fred", "pässe")),
    (b'a LOGIN fred ""', Login("a", "fred", "")),
    # command-auth
    (b"a ENABLE CONDSTORE utf8=accept", Enable("a", ("CONDSTORE", "UTF8=ACCEPT"))),
    (b"a SELECT inbox", Select("a", "INBOX")),
    (b'a SELECT "Lists.Work"', Select("a", "Lists.Work")),
    (b"a EXAMINE Sent", Select("a", "Sent", readonly=True)),
    (b"a SELECT INBOX (CONDSTORE)", Select("a", "INBOX", condstore=True)),
    (b"a SELECT INBOX ()", Select("a", "INBOX")),
    (
        b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
        Select(
            "a",
            "INBOX",
            qresync=QresyncParams(67890007, 20050715194045000, seq(41, (43, 211), (214, 541))),
        ),
    ),
    (
        b"a EXAMINE INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000 "
        b"15000,22500,27000)))",
        Select(
            "a",
            "INBOX",
            readonly=True,
            qresync=QresyncParams(
                67890007,
                90060115194045000,
                seq((1, 29997)),
                (seq(5000, 7500, 9000), seq(15000, 22500, 27000)),
            ),
        ),
    ),
    (
        b"a SELECT INBOX (QRESYNC (1 2 (1,3 4,9)) CONDSTORE)",
        Select(
            "a",
            "INBOX",
            condstore=True,
            qresync=QresyncParams(1, 2, None, (seq(1, 3), seq(4, 9))),
        ),
    ),
    (b"a SELECT INBOX (QRESYNC (1 2))", Select("a", "INBOX", qresync=QresyncParams(1, 2))),
    (b"a CREATE Projects", Create("a", "Projects")),
    (
        b"a CREATE Stuff (USE (\\sent \\X-Custom))",
        Create("a", "Stuff", special_use=("\\Sent", "\\X-Custom")),
    ),
    (b"a CREATE Stuff (USE ())", Create("a", "Stuff")),
    (b"a DELETE Projects", Delete("a", "Projects")),
    (b"a RENAME INBOX Old", Rename("a", "INBOX", "Old")),
    (b"a SUBSCRIBE Lists", Subscribe("a", "Lists")),
    (b"a UNSUBSCRIBE Lists", Subscribe("a", "Lists", subscribe=False)),
    (b'a LIST "" *', List("a", "", ("*",))),
    (b'a LIST "" %', List("a", "", ("%",))),
    (b"a LIST Lists. Work]*", List("a", "Lists.", ("Work]*",))),
    (b'a LIST "" inbox', List("a", "", ("INBOX",))),
    (
        b'a LIST "" ("INBOX" Sent*)',
        List("a", "", ("INBOX", "Sent*"), extended=True),
    ),
    (
        b'a LIST (SUBSCRIBED RECURSIVEMATCH remote) "" "*"',
        List("a", "", ("*",), selection=("SUBSCRIBED", "RECURSIVEMATCH", "REMOTE"), extended=True),
    ),
    (
        b'a LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)',
        List(
            "a",
            "",
            ("*",),
            selection=("SPECIAL-USE",),
            return_options=("SPECIAL-USE",),
            extended=True,
        ),
    ),
    (
        b'a LIST "" % RETURN (CHILDREN SUBSCRIBED STATUS (MESSAGES UNSEEN SIZE))',
        List(
            "a",
            "",
            ("%",),
            return_options=("CHILDREN", "SUBSCRIBED"),
            status=StatusItems(("MESSAGES", "UNSEEN", "SIZE")),
            extended=True,
        ),
    ),
    (b'a LIST "" % RETURN ()', List("a", "", ("%",), extended=True)),
    (b'a LIST () "" %', List("a", "", ("%",), extended=True)),
    (b'a LSUB "" *', List("a", "", ("*",), lsub=True)),
    (b"a NAMESPACE", Namespace("a")),
    (
        b"a STATUS Sent (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT "
        b"HIGHESTMODSEQ APPENDLIMIT)",
        Status(
            "a",
            "Sent",
            StatusItems(
                (
                    "MESSAGES",
                    "UIDNEXT",
                    "UIDVALIDITY",
                    "UNSEEN",
                    "DELETED",
                    "SIZE",
                    "RECENT",
                    "HIGHESTMODSEQ",
                    "APPENDLIMIT",
                )
            ),
        ),
    ),
    (
        b"a APPEND INBOX {5}\r\nhello",
        Append("a", "INBOX", (AppendMessage((), None, b"hello"),)),
    ),
    (
        b'a APPEND Drafts (\\Draft $Foo) "05-Jan-2024 09:08:07 -0130" {2+}\r\nhi',
        Append(
            "a",
            "Drafts",
            (
                AppendMessage(
                    ("\\Draft", "$Foo"),
                    datetime.datetime(
                        2024,
                        1,
                        5,
                        9,
                        8,
                        7,
                        tzinfo=datetime.timezone(-datetime.timedelta(hours=1, minutes=30)),
                    ),
                    b"hi",
                ),
            ),
        ),
    ),
    (
        b'a APPEND INBOX " 5-Jan-2024 09:08:07 +0000" {1}\r\nx',
        Append(
            "a",
            "INBOX",
            (AppendMessage((), datetime.datetime(2024, 1, 5, 9, 8, 7, tzinfo=UTC), b"x"),),
        ),
    ),
    (
        b"a APPEND INBOX () {1}\r\nx (\\Seen) {1+}\r\ny ~{3}\r\na\0b UTF8 (~{2}\r\n\xc3\xa4)",
        Append(
            "a",
            "INBOX",
            (
                AppendMessage((), None, b"x"),
                AppendMessage(("\\Seen",), None, b"y"),
                AppendMessage((), None, b"a\0b"),
                AppendMessage((), None, b"\xc3\xa4", utf8=True),
            ),
        ),
    ),
    (b"a IDLE", Idle("a")),
    (b'a GETQUOTA ""', GetQuota("a", "")),
    (b"a GETQUOTAROOT inbox", GetQuotaRoot("a", "INBOX")),
    (
        b'a SETQUOTA "" (STORAGE 512 message 1000)',
        SetQuota("a", "", (("STORAGE", 512), ("MESSAGE", 1000))),
    ),
    (b'a SETQUOTA "" ()', SetQuota("a", "", ())),
    (b"a ID NIL", Id("a", None)),
    (b"a ID ()", Id("a", ())),
    (
        b'a ID ("name" "Thunderbird" "version" NIL)',
        Id("a", (("name", "Thunderbird"), ("version", None))),
    ),
    # Lenient: aioimaplib pads the list with spaces.
    (b'a ID ( "name" "x" )', Id("a", (("name", "x"),))),
    # command-select
    (b"a CHECK", Check("a")),
    (b"a CLOSE", Close("a")),
    (b"a UNSELECT", Unselect("a")),
    (b"a EXPUNGE", Expunge("a")),
    (b"a UID EXPUNGE 3:5,7", Expunge("a", seq((3, 5), 7))),
    (b"a COPY 2:4 Trash", Copy("a", seq((2, 4)), "Trash")),
    (b"a UID COPY 4:2,* Trash", Copy("a", seq((4, 2), STAR), "Trash", uid=True)),
    (b"a MOVE $ Junk", Copy("a", SequenceSet(saved=True), "Junk", move=True)),
    (b"a uid move 1:* Junk", Copy("a", seq((1, STAR)), "Junk", uid=True, move=True)),
    (
        b"a STORE 2:4 +FLAGS (\\Deleted)",
        Store("a", seq((2, 4)), StoreMode.ADD, ("\\Deleted",)),
    ),
    (
        b"a STORE 1 flags.silent \\seen $Junk",
        Store("a", seq(1), StoreMode.REPLACE, ("\\Seen", "$Junk"), silent=True),
    ),
    (b"a STORE 1 -FLAGS ()", Store("a", seq(1), StoreMode.REMOVE, ())),
    (
        b"a UID STORE 1:* (UNCHANGEDSINCE 0) -FLAGS.SILENT (\\Flagged)",
        Store(
            "a",
            seq((1, STAR)),
            StoreMode.REMOVE,
            ("\\Flagged",),
            silent=True,
            unchanged_since=0,
            uid=True,
        ),
    ),
]


@pytest.mark.parametrize(
    ("data", "expected"), CASES, ids=[c[0][:40].decode("latin-1") for c in CASES]
)
def test_command_forms(data: bytes, expected: Command) -> None:
    assert parse(data) == expected


# -- FETCH (RFC 9051 §6.4.5) -------------------------------------------------------------------

FLAGS = item(FetchAttr.FLAGS)
INTERNALDATE = item(FetchAttr.INTERNALDATE)
SIZE = item(FetchAttr.RFC822_SIZE)
ENVELOPE = item(FetchAttr.ENVELOPE)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (b"ALL", (FLAGS, INTERNALDATE, SIZE, ENVELOPE)),
        (b"fast", (FLAGS, INTERNALDATE, SIZE)),
        (b"FULL", (FLAGS, INTERNALDATE, SIZE, ENVELOPE, item(FetchAttr.BODY))),
        (b"FLAGS", (FLAGS,)),
        (b"(FLAGS UID flags)", (FLAGS, item(FetchAttr.UID))),
        (
            b"(BODY BODYSTRUCTURE MODSEQ RFC822 RFC822.HEADER RFC822.TEXT)",
            tuple(
                item(a)
                for a in (
                    FetchAttr.BODY,
                    FetchAttr.BODYSTRUCTURE,
                    FetchAttr.MODSEQ,
                    FetchAttr.RFC822,
                    FetchAttr.RFC822_HEADER,
                    FetchAttr.RFC822_TEXT,
                )
            ),
        ),
        (b"BODY[]", (item(FetchAttr.BODY_SECTION, section=Section()),)),
        (
            b"BODY.PEEK[]<0.2048>",
            (item(FetchAttr.BODY_SECTION, section=Section(), peek=True, partial=(0, 2048)),),
        ),
        (
            b"BODY[HEADER]",
            (item(FetchAttr.BODY_SECTION, section=Section(text=SectionText.HEADER)),),
        ),
        (
            b'body.peek[header.fields (From "To" {2}\r\ncc)]',
            (
                item(
                    FetchAttr.BODY_SECTION,
                    section=Section(text=SectionText.HEADER_FIELDS, fields=("FROM", "TO", "CC")),
                    peek=True,
                ),
            ),
        ),
        (
            b"BODY[1.2.HEADER.FIELDS.NOT (Received)]",
            (
                item(
                    FetchAttr.BODY_SECTION,
                    section=Section((1, 2), SectionText.HEADER_FIELDS_NOT, ("RECEIVED",)),
                ),
            ),
        ),
        (
            b"(BODY[1.MIME] BODY[2.TEXT] BODY[3])",
            (
                item(FetchAttr.BODY_SECTION, section=Section((1,), SectionText.MIME)),
                item(FetchAttr.BODY_SECTION, section=Section((2,), SectionText.TEXT)),
                item(FetchAttr.BODY_SECTION, section=Section((3,))),
            ),
        ),
        (
            b"(BINARY[1] BINARY.PEEK[]<10.20> BINARY.SIZE[2.1])",
            (
                item(FetchAttr.BINARY, section=Section((1,))),
                item(FetchAttr.BINARY, section=Section(), peek=True, partial=(10, 20)),
                item(FetchAttr.BINARY_SIZE, section=Section((2, 1))),
            ),
        ),
    ],
)
def test_fetch_items(items: bytes, expected: tuple[FetchItem, ...]) -> None:
    assert parse(b"a FETCH 1:* " + items) == Fetch("a", seq((1, STAR)), expected)


def test_fetch_modifiers() -> None:
    assert parse(b"a UID FETCH 1:* FLAGS (CHANGEDSINCE 12345 VANISHED)") == Fetch(
        "a", seq((1, STAR)), (FLAGS,), uid=True, changed_since=12345, vanished=True
    )
    assert parse(b"a FETCH 1 (FLAGS) (changedsince 1)") == Fetch(
        "a", seq(1), (FLAGS,), changed_since=1
    )


# -- SEARCH (RFC 9051 §6.4.4) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (b"ALL", SearchAll()),
        (b"answered", SearchFlag("\\Answered")),
        (b"DELETED", SearchFlag("\\Deleted")),
        (b"DRAFT", SearchFlag("\\Draft")),
        (b"FLAGGED", SearchFlag("\\Flagged")),
        (b"SEEN", SearchFlag("\\Seen")),
        (b"UNANSWERED", SearchFlag("\\Answered", present=False)),
        (b"UNDELETED", SearchFlag("\\Deleted", present=False)),
        (b"UNDRAFT", SearchFlag("\\Draft", present=False)),
        (b"UNFLAGGED", SearchFlag("\\Flagged", present=False)),
        (b"UNSEEN", SearchFlag("\\Seen", present=False)),
        (b"RECENT", SearchFlag("\\Recent")),
        (b"OLD", SearchFlag("\\Recent", present=False)),
        (b"NEW", SearchAnd((SearchFlag("\\Recent"), SearchFlag("\\Seen", present=False)))),
        (b"KEYWORD $Junk", SearchFlag("$Junk")),
        (b"UNKEYWORD $Junk", SearchFlag("$Junk", present=False)),
        (b"BCC x", SearchHeader("Bcc", "x")),
        (b'CC "a b"', SearchHeader("Cc", "a b")),
        (b"FROM fred", SearchHeader("From", "fred")),
        (b"SUBJECT {6}\r\nhello!", SearchHeader("Subject", "hello!")),
        (b'TO ""', SearchHeader("To", "")),
        (b"HEADER X-Spam-Flag YES", SearchHeader("X-Spam-Flag", "YES")),
        (b"BODY stuff", SearchBody("stuff")),
        (b"TEXT stuff", SearchBody("stuff", include_headers=True)),
        (
            b"BEFORE 1-Feb-1994",
            SearchDate(DateField.INTERNAL, DateOp.BEFORE, datetime.date(1994, 2, 1)),
        ),
        (
            b'ON "01-feb-1994"',
            SearchDate(DateField.INTERNAL, DateOp.ON, datetime.date(1994, 2, 1)),
        ),
        (
            b"SINCE 29-Feb-2024",
            SearchDate(DateField.INTERNAL, DateOp.SINCE, datetime.date(2024, 2, 29)),
        ),
        (
            b"SENTBEFORE 1-Jan-2000",
            SearchDate(DateField.SENT, DateOp.BEFORE, datetime.date(2000, 1, 1)),
        ),
        (b"SENTON 1-Jan-2000", SearchDate(DateField.SENT, DateOp.ON, datetime.date(2000, 1, 1))),
        (
            b"SENTSINCE 1-Jan-2000",
            SearchDate(DateField.SENT, DateOp.SINCE, datetime.date(2000, 1, 1)),
        ),
        (b"LARGER 1024", SearchSize(larger=True, size=1024)),
        (b"SMALLER 10", SearchSize(larger=False, size=10)),
        (b"NOT SEEN", SearchNot(SearchFlag("\\Seen"))),
        (b"OR SEEN FLAGGED", SearchOr(SearchFlag("\\Seen"), SearchFlag("\\Flagged"))),
        (b"UID 1:*", SearchSequence(seq((1, STAR)), uid=True)),
        (b"2,4:7,9,12:*", SearchSequence(seq(2, (4, 7), 9, (12, STAR)))),
        (b"$", SearchSequence(SequenceSet(saved=True))),
        (b"UID $", SearchSequence(SequenceSet(saved=True), uid=True)),
        (b"(SEEN)", SearchFlag("\\Seen")),
        (
            b"(SEEN (FLAGGED DRAFT))",
            SearchAnd(
                (SearchFlag("\\Seen"), SearchAnd((SearchFlag("\\Flagged"), SearchFlag("\\Draft"))))
            ),
        ),
        (b"MODSEQ 620162338", SearchModseq(620162338)),
        (b'MODSEQ "/flags/\\\\draft" all 620162338', SearchModseq(620162338)),
        (b"OLDER 3600", SearchWithin(older=True, seconds=3600)),
        (b"YOUNGER 259200", SearchWithin(older=False, seconds=259200)),
        (
            b"UNSEEN FROM x",
            SearchAnd((SearchFlag("\\Seen", present=False), SearchHeader("From", "x"))),
        ),
    ],
)
def test_search_keys(keys: bytes, expected: object) -> None:
    assert parse(b"a SEARCH " + keys) == Search("a", expected)  # type: ignore[arg-type]


def test_search_charset_return_and_uid() -> None:
    assert parse(
        b'a UID SEARCH RETURN (MIN max COUNT SAVE ALL) CHARSET utf-8 SUBJECT "\xc3\xa4"'
    ) == (
        Search(
            "a",
            SearchHeader("Subject", "ä"),
            charset="UTF-8",
            return_options=(
                SearchReturn.MIN,
                SearchReturn.MAX,
                SearchReturn.COUNT,
                SearchReturn.SAVE,
                SearchReturn.ALL,
            ),
            uid=True,
        )
    )
    # RFC 4731 §3.1: an empty RETURN list means ALL.
    assert parse(b"a SEARCH RETURN () ALL") == Search(
        "a", SearchAll(), return_options=(SearchReturn.ALL,)
    )


def test_search_string_in_another_charset_is_kept_losslessly() -> None:
    command = parse(b'a SEARCH CHARSET "ISO-8859-1" BODY "\xe4"')
    assert isinstance(command, Search)
    assert command.charset == "ISO-8859-1"
    assert command.key == SearchBody("\xe4")


# -- mailbox names (RFC 9051 §5.1, RFC 3501 §5.1.3, RFC 6855 §3) -------------------------------


def test_modified_utf7_names_are_decoded() -> None:
    assert parse(b"a SELECT Entw&APw-rfe") == Select("a", "Entwürfe")
    assert parse(b'a CREATE "AT&-T"') == Create("a", "AT&T")


def test_utf8_names_once_enabled() -> None:
    assert parse(b'a SELECT "Entw\xc3\xbcrfe"', utf8=True) == Select("a", "Entwürfe")
    assert parse(b'a CREATE "AT&T"', utf8=True) == Create("a", "AT&T")
    assert parse(b'a LIST "" "Entw\xc3\xbc*"', utf8=True) == List("a", "", ("Entwü*",))


def test_inbox_is_case_insensitive() -> None:
    assert parse(b'a STATUS "iNbOx" (MESSAGES)') == Status("a", "INBOX", StatusItems(("MESSAGES",)))
    assert parse(b"a SELECT inbox", utf8=True) == Select("a", "INBOX")


@pytest.mark.parametrize(
    "data",
    [
        b"a SELECT &AOk",  # unterminated shift
        b"a SELECT &AGE-",  # "a" shifted: not the canonical form
        b"a SELECT {2}\r\n\xc3\xa4",  # raw 8-bit before UTF8=ACCEPT
    ],
)
def test_bad_modified_utf7_is_refused(data: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        parse(data)
    assert caught.value.tag == "a"


def test_invalid_utf8_is_refused_in_utf8_mode() -> None:
    with pytest.raises(ParseError):
        parse(b'a SELECT "\xc3("', utf8=True)


# -- malformed commands ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "tag"),
    [
        (b"", None),
        (b" NOOP", None),
        (b"+ NOOP", None),
        (b"a1", "a1"),
        (b"a1 ", "a1"),
        (b"a1  NOOP", "a1"),
        (b"a1 NOOP ", "a1"),
        (b"a1 NOOP extra", "a1"),
        (b"a1 XYZZY", "a1"),
        (b"a1 LOGIN fred", "a1"),
        (b'a1 LOGIN fred "unterminated', "a1"),
        (b'a1 LOGIN fred "bad\\escape"', "a1"),
        (b"a1 LOGIN fred {10}\r\nshort", "a1"),
        (b"a1 LOGIN fred {3}\r\na\0b", "a1"),
        (b"a1 LOGIN fred \xff", "a1"),
        (b"a1 AUTHENTICATE PLAIN !!!", "a1"),
        (b"a1 AUTHENTICATE PLAIN AGZ", "a1"),
        (b"a1 ENABLE", "a1"),
        (b"a1 SELECT INBOX (BOGUS)", "a1"),
        (b"a1 SELECT INBOX (CONDSTORE CONDSTORE)", "a1"),
        (b"a1 SELECT INBOX (QRESYNC (0 1))", "a1"),
        (b"a1 SELECT INBOX (QRESYNC (1 0))", "a1"),
        (b"a1 SELECT INBOX (QRESYNC (1 1 1:*))", "a1"),
        (b"a1 CREATE x (BOGUS (y))", "a1"),
        (b"a1 RENAME a", "a1"),
        (b'a1 LIST "" "*" RETURN (BOGUS)', "a1"),
        (b'a1 LIST (RECURSIVEMATCH) "" "*"', "a1"),
        (b'a1 LIST (BOGUS) "" "*"', "a1"),
        (b'a1 LIST "" ()', "a1"),
        (b"a1 STATUS INBOX ()", "a1"),
        (b"a1 STATUS INBOX (BOGUS)", "a1"),
        (b"a1 APPEND INBOX", "a1"),
        (b'a1 APPEND INBOX "hello"', "a1"),
        (b'a1 APPEND INBOX "31-Feb-2024 00:00:00 +0000" {1}\r\nx', "a1"),
        (b'a1 APPEND INBOX "01-Feb-2024 24:00:00 +0000" {1}\r\nx', "a1"),
        (b'a1 APPEND INBOX "01-Foo-2024 00:00:00 +0000" {1}\r\nx', "a1"),
        (b"a1 APPEND INBOX (\\Seen {1}\r\nx", "a1"),
        (b"a1 FETCH 1", "a1"),
        (b"a1 FETCH 0 FLAGS", "a1"),
        (b"a1 FETCH 01 FLAGS", "a1"),
        (b"a1 FETCH 4294967296 FLAGS", "a1"),
        (b"a1 FETCH 1, FLAGS", "a1"),
        (b"a1 FETCH 1:2:3 FLAGS", "a1"),
        (b"a1 FETCH $,1 FLAGS", "a1"),
        (b"a1 FETCH 1 ()", "a1"),
        (b"a1 FETCH 1 (ALL)", "a1"),
        (b"a1 FETCH 1 BOGUS", "a1"),
        (b"a1 FETCH 1 BODY.PEEK", "a1"),
        (b"a1 FETCH 1 BODY[MIME]", "a1"),
        (b"a1 FETCH 1 BODY[0]", "a1"),
        (b"a1 FETCH 1 BODY[HEADER.FIELDS]", "a1"),
        (b"a1 FETCH 1 BODY[HEADER.FIELDS ()]", "a1"),
        (b"a1 FETCH 1 BODY[HEADER.FIELDS (a:b)]", "a1"),
        (b"a1 FETCH 1 BODY[BOGUS]", "a1"),
        (b"a1 FETCH 1 BODY[]<0.0>", "a1"),
        (b"a1 FETCH 1 BODY[]<5>", "a1"),
        (b"a1 FETCH 1 BINARY[HEADER]", "a1"),
        (b"a1 FETCH 1 BINARY.SIZE", "a1"),
        (b"a1 FETCH 1 FLAGS (VANISHED)", "a1"),
        (b"a1 UID FETCH 1 FLAGS (VANISHED)", "a1"),
        (b"a1 FETCH 1 FLAGS (CHANGEDSINCE 0)", "a1"),
        (b"a1 FETCH 1 FLAGS (BOGUS)", "a1"),
        (b"a1 STORE 1 FLAGS", "a1"),
        (b"a1 STORE 1 XFLAGS (\\Seen)", "a1"),
        (b"a1 STORE 1 (BOGUS 1) FLAGS (\\Seen)", "a1"),
        (b"a1 STORE 1 FLAGS (\\*)", "a1"),
        (b"a1 SEARCH", "a1"),
        (b"a1 SEARCH BOGUS", "a1"),
        (b"a1 SEARCH NOT", "a1"),
        (b"a1 SEARCH OR SEEN", "a1"),
        (b"a1 SEARCH (SEEN", "a1"),
        (b"a1 SEARCH ()", "a1"),
        (b"a1 SEARCH SINCE 1-Foo-2000", "a1"),
        (b"a1 SEARCH SINCE 32-Jan-2000", "a1"),
        (b"a1 SEARCH KEYWORD \\Seen", "a1"),
        (b"a1 SEARCH LARGER x", "a1"),
        (b"a1 SEARCH LARGER 99999999999999999999999", "a1"),
        (b"a1 SEARCH OLDER 0", "a1"),
        (b"a1 SEARCH RETURN (BOGUS) ALL", "a1"),
        (b'a1 SEARCH MODSEQ "/flags/x" bogus 5', "a1"),
        (b"a1 SEARCH SUBJECT \xc3(", "a1"),
        (b"a1 UID BOGUS 1", "a1"),
        (b"a1 UID", "a1"),
        (b"a1 COPY 1", "a1"),
        (b"a1 ID", "a1"),
        (b'a1 ID ("name")', "a1"),
        (b'a1 SETQUOTA "" (STORAGE)', "a1"),
    ],
)
def test_malformed_commands_are_parse_errors_with_the_tag(data: bytes, tag: str | None) -> None:
    with pytest.raises(ParseError) as caught:
        parse(data)
    assert caught.value.tag == tag
    assert caught.value.message
    assert "\r" not in caught.value.message and "\n" not in caught.value.message


def test_error_messages_never_echo_the_client() -> None:
    with pytest.raises(ParseError) as caught:
        parse(b"a1 SELECT INBOX (INJECTED)")
    assert "INJECTED" not in caught.value.message


# -- limits ------------------------------------------------------------------------------------


def test_ten_thousand_nested_parentheses_fail_quickly() -> None:
    data = b"a SEARCH " + b"(" * 10_000 + b"ALL" + b")" * 10_000
    started = time.perf_counter()
    with pytest.raises(ParseError) as caught:
        parse(data)
    assert caught.value.tag == "a"
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("chain", [b"NOT ", b"OR ALL "])
def test_long_not_or_chains_are_bounded(chain: bytes) -> None:
    with pytest.raises(ParseError):
        parse(b"a SEARCH " + chain * 10_000 + b"ALL")


def test_nesting_up_to_the_limit_is_fine() -> None:
    depth = MAX_DEPTH - 1
    command = parse(b"a SEARCH " + b"NOT " * depth + b"ALL")
    assert isinstance(command, Search)


def test_too_many_search_keys() -> None:
    with pytest.raises(ParseError):
        parse(b"a SEARCH" + b" ALL" * (MAX_ITEMS + 1))
    assert isinstance(parse(b"a SEARCH" + b" ALL" * 100), Search)


def test_too_many_fetch_items() -> None:
    with pytest.raises(ParseError):
        parse(b"a FETCH 1 (" + b" ".join([b"FLAGS"] * (MAX_ITEMS + 1)) + b")")


def test_too_many_sequence_ranges() -> None:
    data = b"a FETCH " + b",".join(b"%d" % (2 * i + 1) for i in range(MAX_SEQUENCE_RANGES + 1))
    with pytest.raises(ParseError):
        parse(data + b" FLAGS")


def test_long_sequence_sets_parse_in_linear_time() -> None:
    ranges = b",".join(b"%d:%d" % (i * 10 + 1, i * 10 + 5) for i in range(30_000))
    started = time.perf_counter()
    command = parse(b"a UID FETCH " + ranges + b" FLAGS")
    assert isinstance(command, Fetch) and len(command.set.ranges) == 30_000
    assert time.perf_counter() - started < 2.0


# -- continuation lines ------------------------------------------------------------------------


def test_authenticate_response() -> None:
    assert authenticate_response(b"AGZyZWQAcGFzcw==") == b"\0fred\0pass"
    assert authenticate_response(b"") == b""
    assert authenticate_response(b"*") is None  # RFC 9051 §6.2.2: the client cancels
    with pytest.raises(ParseError) as caught:
        authenticate_response(b"not base64!")
    assert caught.value.tag is None


def test_idle_done() -> None:
    assert idle_done(b"DONE") and idle_done(b"done")
    assert not idle_done(b"DONE ") and not idle_done(b"a1 NOOP")


def test_login_repr_hides_the_password() -> None:
    assert "secret" not in repr(parse(b"a LOGIN fred secret"))
