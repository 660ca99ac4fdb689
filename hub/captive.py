"""Which phones have passed the portal's welcome page.

Phones are known by their address on the hub's Wi-Fi (and their MAC when
the kernel's neighbour table has it, so a new lease does not matter).
Nothing here is a credential: it only decides what the connectivity checks
answer.
"""

from __future__ import annotations

from pathlib import Path

from hub.core.db import transaction, utcnow

ARP_TABLE = Path("/proc/net/arp")


def client_key(address: str, arp_table: Path = ARP_TABLE) -> str:
    """The MAC of *address* from the neighbour table if known, else the address."""
    try:
        for line in arp_table.read_text().splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 4 and parts[0] == address and parts[3] != "00:00:00:00:00:00":
                return "mac:" + parts[3].lower()
    except OSError:
        pass
    return "ip:" + address


def accept(db, client: str) -> None:
    with transaction(db) as conn:
        conn.execute(
            "insert into portal_clients (client, accepted_at) values (?, ?)"
            " on conflict (client) do update set accepted_at = excluded.accepted_at",
            (client, utcnow()),
        )


def accepted(db, client: str) -> bool:
    return db.conn.execute("select 1 from portal_clients where client = ?", (client,)).fetchone() is not None
