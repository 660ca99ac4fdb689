-- Settings changes and diagnostics an officer asks of a hub from the console, carried out
-- on the hub's next sync. A change waits ('waiting') until the hub answers 'applied' or
-- 'refused' with its reason; once answered, a Wi-Fi passphrase in it is blanked. The hub's
-- answer also carries the changeable settings it now runs with (hub_remote_settings).
-- A diagnostics bundle is the hub's JSON, every secret already redacted on the hub.
create table hub_settings_changes (
    id text primary key,
    hub_id text not null references hubs (id),
    changes text not null,
    asked_by text not null,
    asked_at text not null,
    state text not null default 'waiting',
    message text not null default '',
    answered_at text
);
create index hub_settings_changes_hub on hub_settings_changes (hub_id, asked_at);
create table hub_remote_settings (
    hub_id text primary key references hubs (id),
    settings text not null,
    reported_at text not null
);
create table hub_diagnostics (
    id text primary key,
    hub_id text not null references hubs (id),
    asked_by text not null,
    asked_at text not null,
    received_at text,
    bytes integer,
    bundle text
);
create index hub_diagnostics_hub on hub_diagnostics (hub_id, asked_at);
