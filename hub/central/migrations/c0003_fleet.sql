-- The fleet's care: each hub's newest whole backup, and the problems officers
-- are (or will be) told about. A problem is one row while it lasts: opened when
-- first seen, alerted_at set when its alert went out (debounced), deleted when
-- it clears, after the recovery message if an alert was sent.
create table hub_backups (
    hub_id text primary key references hubs (id),
    backup_id text not null,
    bytes integer not null,
    sha256 text not null,
    made_at text not null,
    received_at text not null
);
create table fleet_alerts (
    hub_id text not null references hubs (id),
    problem text not null,
    detail text not null default '',
    opened_at text not null,
    alerted_at text,
    primary key (hub_id, problem)
);
