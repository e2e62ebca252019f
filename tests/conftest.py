"""Fixtures shared by unit and integration tests: a throwaway TLS certificate."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.certs import write_self_signed
from tests.dns.fixture import dns_resolver, dns_server  # noqa: F401


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1: (cert_file, key_file)."""
    return write_self_signed(tmp_path_factory.mktemp("tls"))
