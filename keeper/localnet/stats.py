"""What the node did, counted: so tests and benchmarks measure its work, not only bytes.

A real node walks every account of the program for each ``getProgramAccounts``, whatever
the filters (its secondary index is by owner only), so ``accountsVisited`` grows by the
program's whole account count per call; a ``getProgramAccountsV2`` page visits the
accounts it walks (up to its ``limit``). ``localnet_*`` control calls are not counted.
"""

from __future__ import annotations

from collections import Counter


class NodeStats:
    """Counters of calls, bytes, accounts visited and websocket traffic (cumulative)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.http_requests = 0
        self.calls: Counter[str] = Counter()
        self.response_bytes: Counter[str] = Counter()
        self.accounts_visited: Counter[str] = Counter()
        self.accounts_returned: Counter[str] = Counter()
        self.last_accounts_visited: dict[str, int] = {}
        self.changed_since_pages = 0  # getProgramAccountsV2 pages with changedSinceSlot
        self.last_changed_since_slot: int | None = None  # the last such page's slot
        self.notifications: Counter[str] = Counter()
        self.notification_bytes = 0
        self.websocket_connections = 0  # accepted since the last reset
        self.websocket_open = 0  # open now (not reset: it is a level, not a count)

    def visited(self, method: str, visited: int, returned: int) -> None:
        """One getProgramAccounts(-like) call walked ``visited`` accounts."""
        self.accounts_visited[method] += visited
        self.accounts_returned[method] += returned
        self.last_accounts_visited[method] = visited

    def notified(self, method: str, size: int) -> None:
        self.notifications[method] += 1
        self.notification_bytes += size

    def snapshot(self) -> dict[str, object]:
        """JSON-ready, as ``localnet_getStats`` answers it."""
        return {
            "httpRequests": self.http_requests,
            "calls": dict(self.calls),
            "responseBytes": dict(self.response_bytes),
            "accountsVisited": dict(self.accounts_visited),
            "accountsReturned": dict(self.accounts_returned),
            "lastCallAccountsVisited": dict(self.last_accounts_visited),
            "changedSincePages": self.changed_since_pages,
            "lastChangedSinceSlot": self.last_changed_since_slot,
            "notifications": dict(self.notifications),
            "notificationBytes": self.notification_bytes,
            "websocketConnections": self.websocket_connections,
            "websocketOpen": self.websocket_open,
        }
