"""Connection limits shared by every listener: a total and a per-IP count.

One `ConnectionGate` per server; front ends receive it as a plain object with
`acquire(ip) -> bool` and `release(ip)`. Single-threaded (the event loop), so no lock.
"""

from __future__ import annotations

from collections import Counter


class ConnectionGate:
    def __init__(self, max_total: int, max_per_ip: int) -> None:
        self.max_total = max_total
        self.max_per_ip = max_per_ip
        self._per_ip: Counter[str] = Counter()
        self._total = 0

    @property
    def total(self) -> int:
        return self._total

    def acquire(self, ip: str) -> bool:
        if self._total >= self.max_total or self._per_ip[ip] >= self.max_per_ip:
            return False
        self._total += 1
        self._per_ip[ip] += 1
        return True

    def release(self, ip: str) -> None:
        if self._per_ip[ip] <= 0:
            return
        self._total -= 1
        self._per_ip[ip] -= 1
        if not self._per_ip[ip]:
            del self._per_ip[ip]

    def update(self, max_total: int, max_per_ip: int) -> None:
        """New limits from a reloaded config; connections already open stay."""
        self.max_total = max_total
        self.max_per_ip = max_per_ip
