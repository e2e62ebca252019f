"""CPU time of `pymta.mime.summary.summarize` per message, for typical shapes.

Run: .venv/bin/python benchmarks/mime_summary.py

Each case is a Thunderbird-like multipart/mixed (text/plain + text/html alternative and a
base64 attachment) of about the given size, stored with CRLF as SMTP delivers it, plus
the same message with bare LF line ends (a Maildir taken over from another server).
"""

from __future__ import annotations

import base64
import os
import time

from pymta.mime.summary import summarize

HEADER = (
    "Return-Path: <alice@example.org>\n"
    "Received: from mail.example.org (mail.example.org [192.0.2.10])\n"
    "\tby mx.example.net with ESMTPS id 4VfT2k0Xyz; Tue, 14 May 2024 10:21:35 +0200\n"
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=mail;\n"
    "\th=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\n"
    "\tb=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSwganVzdCBzb21lIGJ5dGVz\n"
    "Message-ID: <0f2a6c1e-1d2b-4c7e-9a0b-3f1d2e4c5b6a@example.org>\n"
    "Date: Tue, 14 May 2024 10:21:33 +0200\n"
    "MIME-Version: 1.0\n"
    "User-Agent: Mozilla Thunderbird\n"
    "Content-Language: en-US\n"
    "To: Bob <bob@example.net>, Carol <carol@example.net>\n"
    "Cc: team: dave@example.net, erin@example.net;\n"
    "From: Alice <alice@example.org>\n"
    "Subject: =?UTF-8?Q?Quarterly_report_=E2=80=94_Q1?=\n"
    'Content-Type: multipart/mixed; boundary="------------mixed0123456789"\n'
    "\n"
)


SHORT_HEADER = (
    "Message-ID: <0f2a6c1e@example.org>\n"
    "Date: Tue, 14 May 2024 10:21:33 +0200\n"
    "MIME-Version: 1.0\n"
    "To: Bob <bob@example.net>\n"
    "From: Alice <alice@example.org>\n"
    "Subject: Quarterly report\n"
    'Content-Type: multipart/mixed; boundary="------------mixed0123456789"\n'
    "\n"
)


def message(attachment_bytes: int, *, header: str = HEADER, eol: str = "\r\n") -> bytes:
    text = "Hi Bob,\n\nthe report is attached.\n\nAlice\n"
    html = "<html><body><p>Hi Bob,</p><p>the report is attached.</p></body></html>\n"
    encoded = base64.encodebytes(os.urandom(attachment_bytes)).decode()
    body = (
        "This is a multi-part message in MIME format.\n"
        "--------------mixed0123456789\n"
        'Content-Type: multipart/alternative; boundary="------------alt0123456789"\n'
        "\n"
        "--------------alt0123456789\n"
        "Content-Type: text/plain; charset=UTF-8; format=flowed\n"
        "Content-Transfer-Encoding: 7bit\n"
        "\n" + text + "\n"
        "--------------alt0123456789\n"
        "Content-Type: text/html; charset=UTF-8\n"
        "Content-Transfer-Encoding: 7bit\n"
        "\n" + html + "\n"
        "--------------alt0123456789--\n"
        "\n"
        "--------------mixed0123456789\n"
        'Content-Type: application/pdf; name="report.pdf"\n'
        'Content-Disposition: attachment; filename="report.pdf"\n'
        "Content-Transfer-Encoding: base64\n"
        "\n" + encoded + "\n"
        "--------------mixed0123456789--\n"
    )
    return (header + body).replace("\n", eol).encode()


def cpu_per_call(raw: bytes, seconds: float = 1.0) -> float:
    """Median CPU seconds of one summarize(raw) call over batches lasting about `seconds`."""
    summarize(raw)
    batch = 1
    while True:
        start = time.process_time()
        for _ in range(batch):
            summarize(raw)
        elapsed = time.process_time() - start
        if elapsed > 0.05:
            break
        batch *= 2
    samples = []
    deadline = time.process_time() + seconds
    while time.process_time() < deadline:
        start = time.process_time()
        for _ in range(batch):
            summarize(raw)
        samples.append((time.process_time() - start) / batch)
    samples.sort()
    return samples[len(samples) // 2]


def main() -> None:
    cases = [
        ("1 KB multipart (CRLF)", message(32, header=SHORT_HEADER)),
        ("2 KB multipart (CRLF)", message(64)),
        ("100 KB multipart (CRLF)", message(72_000)),
        ("100 KB multipart (bare LF)", message(72_000, eol="\n")),
        ("10 MB multipart (CRLF)", message(7_500_000)),
    ]
    for name, raw in cases:
        per_call = cpu_per_call(raw)
        print(f"{name:30s} {len(raw):>10,d} bytes  {per_call * 1e6:9.1f} µs CPU per message")


if __name__ == "__main__":
    main()
