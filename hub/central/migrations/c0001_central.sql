-- The central server's first tables. The officers' accounts tables
-- (hub.accounts.TABLES_SQL) are created in the same migration.
create table hubs (
    id text primary key,
    name text not null unique,
    token_hash text not null unique,
    created_at text not null,
    revoked_at text,
    last_contact text,
    last_address text,
    health text not null default '{}'
);
create table records (
    seq integer primary key autoincrement,
    id text not null unique,
    hub_id text not null references hubs (id),
    kind text not null,
    created_at text not null,
    of_id text,
    data text not null,
    sha256 text not null,
    received_at text not null
);
create index records_kind on records (kind, created_at);
create index records_of on records (of_id);
create table uploads (
    id text primary key,
    hub_id text not null references hubs (id),
    total integer not null,
    sha256 text not null,
    received integer not null default 0,
    complete integer not null default 0,
    created_at text not null,
    completed_at text
);
create table files (
    id text primary key,
    name text not null,
    type text not null,
    bytes integer not null,
    sha256 text not null,
    created_at text not null
);
create table publications (
    id text primary key,
    seq integer not null unique,
    kind text not null check (kind in ('notice', 'announcement')),
    data text not null,
    targets text,
    withdrawn integer not null default 0,
    created_by text not null default '',
    created_at text not null,
    updated_at text not null
);
create table counters (
    name text primary key,
    value integer not null
);
create table pull_cursors (
    hub_id text primary key references hubs (id),
    cursor integer not null,
    at text not null
);
create table central_state (
    key text primary key,
    value text not null
);
