"""The IMAP command parser: one framed command (see framer.py) → one `command.Command` value.

`parse_command` reads the tag and the command name, then the rule of that command (the
`_COMMANDS` table, one function per command, named after its ABNF rule in RFC 9051 §9 or
the extension that defines it); `authenticate_response` and `idle_done` read the
continuation lines of AUTHENTICATE and IDLE. Anything malformed raises `ParseError`, which
the session answers `tag BAD message`.

The command rules build on the grammar modules, whose conventions and bounds they share
(grammar.py: `Reader`, `ParseError`, the token rules, MAX_DEPTH / MAX_ITEMS /
MAX_SEQUENCE_RANGES): grammar_search.py for SEARCH, grammar_fetch.py for FETCH,
grammar_mailbox.py for the parameters of SELECT, CREATE, LIST and STATUS. This module is
the parser's public face: the names in `__all__` are what the session and the tests import.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from .command import (
    Append,
    AppendMessage,
    Authenticate,
    Capability,
    Check,
    Close,
    Command,
    Copy,
    Create,
    Delete,
    Enable,
    Expunge,
    Fetch,
    GetQuota,
    GetQuotaRoot,
    Id,
    Idle,
    List,
    Login,
    Logout,
    Namespace,
    Noop,
    Rename,
    Search,
    SearchReturn,
    Select,
    SetQuota,
    StartTls,
    Status,
    StatusItems,
    Store,
    StoreMode,
    Subscribe,
    Unselect,
)
from .grammar import (
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_SEQUENCE_RANGES,
    ParseError,
    Reader,
    astring,
    atom,
    date_time,
    flag,
    flag_list,
    list_mailbox,
    literal,
    literal8,
    mailbox,
    mod_sequence_valzer,
    nstring,
    number64,
    sequence_set,
    string,
    tag,
    utf8_text,
)
from .grammar_fetch import fetch_atts, fetch_modifiers
from .grammar_mailbox import (
    list_return_opts,
    list_select_opts,
    patterns,
    select_params,
    status_att_list,
    use_attrs,
)
from .grammar_search import search_program, search_return_opts

__all__ = [
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_SEQUENCE_RANGES",
    "ParseError",
    "authenticate_response",
    "idle_done",
    "parse_command",
]

_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


def parse_command(frame: bytes, *, utf8_names: bool) -> Command:
    """command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF
    (RFC 9051 §9; the framer has removed the final CRLF)."""
    r = Reader(frame, utf8_names=utf8_names)
    r.tag = tag(r)
    r.sp()
    name = r.keyword("a command name")
    rule = _COMMANDS.get(name)
    if rule is None:
        r.fail("unknown command")
    command = rule(r, r.tag)
    if not r.at_end():
        r.fail("unexpected characters after the command")
    return command


# -- commands ----------------------------------------------------------------------------------


def _no_arguments(kind: Callable[[str], Command]) -> Callable[[Reader, str], Command]:
    def rule(r: Reader, tag: str) -> Command:
        return kind(tag)

    return rule


def authenticate(r: Reader, tag: str) -> Command:
    """authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp] ; auth-type = atom ;
    initial-resp = (base64 / "=")  (RFC 9051 §9, SASL-IR RFC 4959 §7)"""
    r.sp()
    mechanism = atom(r).decode("ascii").upper()
    if not r.skip(b" "):
        return Authenticate(tag, mechanism)
    if r.skip(b"="):
        return Authenticate(tag, mechanism, b"")  # RFC 4959 §3: "=" is an empty response
    raw = r.match(_BASE64, "base64").group()
    if not raw:
        r.fail("expected base64")
    return Authenticate(tag, mechanism, _base64(r, raw))


def _base64(r: Reader, raw: bytes) -> bytes:
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:
        r.fail("invalid base64")


def login(r: Reader, tag: str) -> Command:
    """login = "LOGIN" SP userid SP password ; userid = astring ; password = astring
    (RFC 9051 §9)"""
    r.sp()
    user = utf8_text(r, astring(r))
    r.sp()
    return Login(tag, user, utf8_text(r, astring(r)))


def enable(r: Reader, tag: str) -> Command:
    """enable = "ENABLE" 1*(SP capability) ; capability = ("AUTH=" auth-type) / atom
    (RFC 9051 §9, RFC 5161 §4)"""
    names: list[str] = []
    while r.skip(b" "):
        r.count()
        names.append(atom(r).decode("ascii").upper())
    if not names:
        r.fail("expected a capability")
    return Enable(tag, tuple(dict.fromkeys(names)))


def select(r: Reader, tag: str) -> Command:
    """select = "SELECT" SP mailbox [select-params]  (RFC 9051 §9, RFC 4466 §3)"""
    return _select(r, tag, readonly=False)


def examine(r: Reader, tag: str) -> Command:
    """examine = "EXAMINE" SP mailbox [select-params]  (RFC 9051 §9, RFC 4466 §3)"""
    return _select(r, tag, readonly=True)


def _select(r: Reader, tag: str, *, readonly: bool) -> Command:
    r.sp()
    name = mailbox(r)
    condstore, qresync = select_params(r) if r.skip(b" ") else (False, None)
    return Select(tag, name, readonly=readonly, condstore=condstore, qresync=qresync)


def create(r: Reader, tag: str) -> Command:
    """create = "CREATE" SP mailbox [create-params] ; create-params = SP "(" create-param
    *(SP create-param) ")" ; create-param =/ "USE" SP "(" [use-attr *(SP use-attr)] ")"
    (RFC 9051 §9, RFC 4466 §3, RFC 6154 §6)"""
    r.sp()
    name = mailbox(r)
    uses: tuple[str, ...] = ()
    if r.skip(b" "):
        r.expect(b"(", "'('")
        if r.keyword("a create parameter") != "USE":
            r.fail("unknown create parameter")  # RFC 4466 §2.2
        r.sp()
        uses = use_attrs(r)
        r.expect(b")", "')'")
    return Create(tag, name, uses)


def delete(r: Reader, tag: str) -> Command:
    """delete = "DELETE" SP mailbox  (RFC 9051 §9)"""
    r.sp()
    return Delete(tag, mailbox(r))


def rename(r: Reader, tag: str) -> Command:
    """rename = "RENAME" SP mailbox SP mailbox  (RFC 9051 §9; no rename-params are known,
    RFC 4466 §2.3)"""
    r.sp()
    old = mailbox(r)
    r.sp()
    return Rename(tag, old, mailbox(r))


def subscribe(r: Reader, tag: str) -> Command:
    """subscribe = "SUBSCRIBE" SP mailbox  (RFC 9051 §9)"""
    r.sp()
    return Subscribe(tag, mailbox(r))


def unsubscribe(r: Reader, tag: str) -> Command:
    """unsubscribe = "UNSUBSCRIBE" SP mailbox  (RFC 9051 §9)"""
    r.sp()
    return Subscribe(tag, mailbox(r), subscribe=False)


def list_(r: Reader, tag: str) -> Command:
    """list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts] ;
    mbox-or-pat = list-mailbox / patterns  (RFC 9051 §9, RFC 5258 §6)"""
    r.sp()
    selection: tuple[str, ...] = ()
    extended = False
    if r.peek() == 0x28:
        selection = list_select_opts(r)
        extended = True
        r.sp()
    reference = mailbox(r)
    r.sp()
    if r.peek() == 0x28:
        found = patterns(r)
        extended = True
    else:
        found = (list_mailbox(r),)
    options: tuple[str, ...] = ()
    status_items: StatusItems | None = None
    if r.skip(b" "):
        if r.keyword("RETURN") != "RETURN":
            r.fail("expected RETURN")
        r.sp()
        options, status_items = list_return_opts(r)
        extended = True
    return List(tag, reference, found, selection, options, status_items, extended=extended)


def lsub(r: Reader, tag: str) -> Command:
    """lsub = "LSUB" SP mailbox SP list-mailbox  (RFC 3501 §9)"""
    r.sp()
    reference = mailbox(r)
    r.sp()
    return List(tag, reference, (list_mailbox(r),), lsub=True)


def namespace(r: Reader, tag: str) -> Command:
    """namespace-command = "NAMESPACE"  (RFC 9051 §9, RFC 2342 §5)"""
    return Namespace(tag)


def status(r: Reader, tag: str) -> Command:
    """status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"  (RFC 9051 §9)"""
    r.sp()
    name = mailbox(r)
    r.sp()
    return Status(tag, name, status_att_list(r))


def append(r: Reader, tag: str) -> Command:
    """append = "APPEND" SP mailbox 1*append-message ;
    append-message = [SP flag-list] [SP date-time] SP append-data  (RFC 3502 §6 MULTIAPPEND,
    RFC 4466 §3)"""
    r.sp()
    name = mailbox(r)
    messages: list[AppendMessage] = []
    while r.skip(b" "):
        r.count()
        flags: tuple[str, ...] = ()
        if r.peek() == 0x28:
            flags = flag_list(r)
            r.sp()
        when = None
        if r.peek() == 0x22:
            when = date_time(r)
            r.sp()
        data, utf8 = append_data(r)
        messages.append(AppendMessage(flags, when, data, utf8))
    if not messages:
        r.fail("expected a message")
    return Append(tag, name, tuple(messages))


def append_data(r: Reader) -> tuple[bytes, bool]:
    """append-data = literal / literal8 / utf8-literal ; utf8-literal = "UTF8" SP "("
    literal8 ")"  (RFC 4466 §3, RFC 3516 §4.4, RFC 6855 §4). Returns (octets, utf8)."""
    first = r.peek()
    if first == 0x7B:
        return literal(r, allow_nul=True), False
    if first == 0x7E:  # "~"
        return literal8(r), False
    if r.keyword("a message literal") != "UTF8":
        r.fail("expected a message literal")
    r.sp()
    r.expect(b"(", "'('")
    data = literal8(r)
    r.expect(b")", "')'")
    return data, True


def fetch(r: Reader, tag: str, *, uid: bool = False) -> Command:
    """fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
    "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]  (RFC 9051 §9, RFC 4466 §3)"""
    r.sp()
    found = sequence_set(r)
    r.sp()
    items = fetch_atts(r)
    changed_since, vanished = None, False
    if r.skip(b" "):
        changed_since, vanished = fetch_modifiers(r, uid=uid)
    return Fetch(tag, found, items, uid, changed_since, vanished)


def store(r: Reader, tag: str, *, uid: bool = False) -> Command:
    """store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags ;
    store-modifiers = SP "(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")"  (RFC 9051 §9,
    RFC 4466 §3, RFC 7162 §7)"""
    r.sp()
    found = sequence_set(r)
    r.sp()
    unchanged_since: int | None = None
    if r.skip(b"("):
        if r.keyword("a store modifier") != "UNCHANGEDSINCE":
            r.fail("unknown store modifier")
        r.sp()
        unchanged_since = mod_sequence_valzer(r)
        r.expect(b")", "')'")
        r.sp()
    mode, silent, flags = store_att_flags(r)
    return Store(tag, found, mode, flags, silent, unchanged_since, uid)


_STORE_ITEM = re.compile(rb"([+-]?)FLAGS(\.SILENT)?", re.IGNORECASE)


def store_att_flags(r: Reader) -> tuple[StoreMode, bool, tuple[str, ...]]:
    """store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))
    (RFC 9051 §9)"""
    item = r.match(_STORE_ITEM, "FLAGS, +FLAGS or -FLAGS")
    mode = StoreMode(item.group(1).decode("ascii"))
    r.sp()
    if r.peek() == 0x28:
        return mode, bool(item.group(2)), flag_list(r)
    flags = [flag(r)]
    while r.skip(b" "):
        r.count()
        flags.append(flag(r))
    return mode, bool(item.group(2)), tuple(dict.fromkeys(flags))


def search(r: Reader, tag: str, *, uid: bool = False) -> Command:
    """search = "SEARCH" [search-return-opts] SP search-program  (RFC 9051 §9)"""
    r.sp()
    options: tuple[SearchReturn, ...] | None = None
    if r.peek_keyword() == "RETURN":
        r.keyword()
        r.sp()
        options = search_return_opts(r)
        r.sp()
    key = search_program(r)
    return Search(tag, key, r.charset, options, uid)


def copy(r: Reader, tag: str, *, uid: bool = False) -> Command:
    """copy = "COPY" SP sequence-set SP mailbox  (RFC 9051 §9)"""
    r.sp()
    found = sequence_set(r)
    r.sp()
    return Copy(tag, found, mailbox(r), uid=uid)


def move(r: Reader, tag: str, *, uid: bool = False) -> Command:
    """move = "MOVE" SP sequence-set SP mailbox  (RFC 9051 §9, RFC 6851 §4)"""
    r.sp()
    found = sequence_set(r)
    r.sp()
    return Copy(tag, found, mailbox(r), uid=uid, move=True)


def uid_expunge(r: Reader, tag: str) -> Command:
    """uid-expunge = "EXPUNGE" SP sequence-set  (RFC 9051 §9, RFC 4315 §2.1)"""
    r.sp()
    return Expunge(tag, sequence_set(r))


_UID_COMMANDS: dict[str, Callable[[Reader, str], Command]] = {
    "COPY": lambda r, t: copy(r, t, uid=True),
    "MOVE": lambda r, t: move(r, t, uid=True),
    "FETCH": lambda r, t: fetch(r, t, uid=True),
    "SEARCH": lambda r, t: search(r, t, uid=True),
    "STORE": lambda r, t: store(r, t, uid=True),
    "EXPUNGE": uid_expunge,
}


def uid(r: Reader, tag: str) -> Command:
    """uid = "UID" SP (copy / move / fetch / search / store / uid-expunge)  (RFC 9051 §9)"""
    r.sp()
    rule = _UID_COMMANDS.get(r.keyword("a UID command"))
    if rule is None:
        r.fail("unknown UID command")
    return rule(r, tag)


def id_(r: Reader, tag: str) -> Command:
    """id = "ID" SP id_params_list ; id_params_list = "(" #(string SPACE nstring) ")" / nil
    (RFC 2971 §4; values are informational, so bad UTF-8 is replaced, not refused)"""
    r.sp()
    if r.data[r.pos : r.pos + 3].upper() == b"NIL":
        r.pos += 3
        return Id(tag, None)
    r.expect(b"(", "'('")
    # Deliberately lenient (RFC 9051 §7.5 robustness): aioimaplib sends `ID ( "k" "v" )`,
    # with spaces inside the parentheses; the values are informational only.
    r.skip(b" ")
    params: list[tuple[str, str | None]] = []
    if not r.skip(b")"):
        while True:
            r.count()
            key = string(r).decode("utf-8", "replace")
            r.sp()
            value = nstring(r)
            params.append((key, None if value is None else value.decode("utf-8", "replace")))
            spaced = r.skip(b" ")
            if r.skip(b")"):
                break
            if not spaced:
                r.fail("expected SP or ')'")
    return Id(tag, tuple(params))


def getquota(r: Reader, tag: str) -> Command:
    """getquota = "GETQUOTA" SP quota-root-name ; quota-root-name = astring  (RFC 9208 §7)"""
    r.sp()
    return GetQuota(tag, utf8_text(r, astring(r)))


def getquotaroot(r: Reader, tag: str) -> Command:
    """getquotaroot = "GETQUOTAROOT" SP mailbox  (RFC 9208 §7)"""
    r.sp()
    return GetQuotaRoot(tag, mailbox(r))


def setquota(r: Reader, tag: str) -> Command:
    """setquota = "SETQUOTA" SP quota-root-name SP setquota-list ; setquota-list = "("
    [setquota-resource *(SP setquota-resource)] ")" ; setquota-resource = resource-name SP
    resource-limit  (RFC 9208 §7)"""
    r.sp()
    root = utf8_text(r, astring(r))
    r.sp()
    r.expect(b"(", "'('")
    limits: list[tuple[str, int]] = []
    if not r.skip(b")"):
        while True:
            r.count()
            name = atom(r).decode("ascii").upper()
            r.sp()
            limits.append((name, number64(r)))
            if r.skip(b")"):
                break
            r.sp()
    return SetQuota(tag, root, tuple(limits))


_COMMANDS: dict[str, Callable[[Reader, str], Command]] = {
    # command-any (RFC 9051 §9), ID (RFC 2971)
    "CAPABILITY": _no_arguments(Capability),
    "NOOP": _no_arguments(Noop),
    "LOGOUT": _no_arguments(Logout),
    "ID": id_,
    # command-nonauth
    "STARTTLS": _no_arguments(StartTls),
    "AUTHENTICATE": authenticate,
    "LOGIN": login,
    # command-auth
    "ENABLE": enable,
    "SELECT": select,
    "EXAMINE": examine,
    "CREATE": create,
    "DELETE": delete,
    "RENAME": rename,
    "SUBSCRIBE": subscribe,
    "UNSUBSCRIBE": unsubscribe,
    "LIST": list_,
    "LSUB": lsub,
    "NAMESPACE": namespace,
    "STATUS": status,
    "APPEND": append,
    "IDLE": _no_arguments(Idle),
    "GETQUOTA": getquota,
    "GETQUOTAROOT": getquotaroot,
    "SETQUOTA": setquota,
    # command-select
    "CHECK": _no_arguments(Check),
    "CLOSE": _no_arguments(Close),
    "UNSELECT": _no_arguments(Unselect),
    "EXPUNGE": _no_arguments(Expunge),
    "FETCH": fetch,
    "STORE": store,
    "SEARCH": search,
    "COPY": copy,
    "MOVE": move,
    "UID": uid,
}


# -- continuation lines (framer.ContinuationLine) ----------------------------------------------


def authenticate_response(line: bytes) -> bytes | None:
    """The client's answer to an AUTHENTICATE challenge: base64, or "*" to cancel (None)
    (RFC 9051 §6.2.2). Raises ParseError (untagged) for anything else."""
    if line == b"*":
        return None
    r = Reader(line, utf8_names=False)
    if _BASE64.fullmatch(line) is None:
        r.fail("invalid base64")
    return _base64(r, line)


def idle_done(line: bytes) -> bool:
    """idle = "IDLE" CRLF "DONE"  (RFC 9051 §9, RFC 2177 §3): is this line the DONE?"""
    return line.upper() == b"DONE"
