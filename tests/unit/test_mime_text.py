"""Message text as SEARCH compares it: RFC 2047 words, header forms, the ENVELOPE's search
forms kept in the index, and the text of a message file (RFC 9051 §6.4.4)."""

from __future__ import annotations

import base64
import datetime

import pytest

from pymta.mime.summary import build_summary
from pymta.mime.text import (
    MessageText,
    SearchForms,
    address_text,
    decode_words,
    header_form,
    search_forms,
    sent_day,
)

MESSAGE = (
    b"From: =?utf-8?q?Ren=C3=A9_Fran=C3=A7ois?= <rene@example.fr>\r\n"
    b"To: alice@example.org, Team: bob@example.net, carol@example.com;\r\n"
    b"Cc: Carol <carol@example.com>\r\n"
    b"Subject: =?iso-8859-1?q?Caf=E9?= =?utf-8?b?w6AgUGFyaXM=?=\r\n"
    b"  et  Lyon\r\n"
    b"Date: Fri, 1 Mar 2024 23:30:00 -0800\r\n"
    b"Message-ID: <A1@Example.FR>\r\n"
    b"In-Reply-To: <z9@example.org>\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n'
    b"\r\n"
    b"--b\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n" + base64.encodebytes("Überraschung im Anhang".encode()) + b"--b\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"\r\n"
    b"binary needle\r\n"
    b"--b--\r\n"
)


# -- RFC 2047 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        ("plain", "plain"),
        ("=?utf-8?q?caf=C3=A9_cr=C3=A8me?=", "café crème"),
        ("=?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?=", "éé"),  # whitespace between words dropped
        ("a =?iso-8859-1?q?=E9?= b", "a é b"),
        ("=?utf-8*fr?q?=C3=A9t=C3=A9?=", "été"),  # RFC 2231 §5 language
        ("=?x-unknown?q?abc?=", "=?x-unknown?q?abc?="),
        ("=?utf-8?b?w6k?=", "é"),  # missing padding
        ("=?utf-8?q?broken", "=?utf-8?q?broken"),
    ],
)
def test_decode_words(text: str, decoded: str) -> None:
    assert decode_words(text) == decoded


# -- header values as searched ----------------------------------------------------------------


def test_header_form_decodes_unfolds_and_case_folds() -> None:
    assert header_form("=?utf-8?q?STRA=C3=9FE?=  im\r\n  Tal") == "strasse im tal"
    assert header_form("Plain") == "plain"


def test_address_text_keeps_names_mailboxes_and_group_names() -> None:
    envelope = build_summary(MESSAGE).envelope
    assert address_text(envelope[2]) == "rené françois <rene@example.fr>"
    assert address_text(envelope[5]) == (
        "alice@example.org, team:, bob@example.net, carol@example.com"
    )
    assert address_text(None) is None
    assert address_text([]) is None


def test_sent_day_ignores_time_and_timezone() -> None:
    assert sent_day("Fri, 1 Mar 2024 23:30:00 -0800") == datetime.date(2024, 3, 1).toordinal()
    assert sent_day("not a date") is None


def test_search_forms_of_an_envelope() -> None:
    forms = search_forms(build_summary(MESSAGE).envelope)
    assert forms == SearchForms(
        date="fri, 1 mar 2024 23:30:00 -0800",
        subject="caféà paris et lyon",
        from_="rené françois <rene@example.fr>",
        to="alice@example.org, team:, bob@example.net, carol@example.com",
        cc="carol <carol@example.com>",
        bcc=None,
        in_reply_to="<z9@example.org>",
        message_id="<a1@example.fr>",
        sent=datetime.date(2024, 3, 1).toordinal(),
    )


def test_search_forms_of_no_envelope_are_all_none() -> None:
    assert search_forms([]) == SearchForms(None, None, None, None, None, None, None, None, None)
    bare = search_forms(build_summary(b"\r\nbody only\r\n").envelope)
    assert bare.subject is None and bare.from_ is None and bare.sent is None


def test_search_forms_agree_with_the_header_read_from_the_file() -> None:
    # What the index keeps is what a search of the file would compare.
    forms = search_forms(build_summary(MESSAGE).envelope)
    text = MessageText(MESSAGE)
    assert text.header_values("subject") == [forms.subject]
    assert text.header_values("message-id") == [forms.message_id]
    assert text.header_values("date") == [forms.date]
    assert text.sent_day() == forms.sent


# -- a message file ---------------------------------------------------------------------------


def test_message_text_decodes_text_parts_only() -> None:
    text = MessageText(MESSAGE)
    assert "überraschung im anhang" in text.body_text()
    assert "binary needle" not in text.body_text()  # RFC 9051 §6.4.4: not a text part
    assert "caféà paris" in text.header_text()
    assert "content-type: application/octet-stream" in text.header_text()
