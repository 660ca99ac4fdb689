-- Hub releases the central server offers its hubs: the signed manifest (its exact
-- bytes) and signature; the wheel itself is in the media storage as release-VERSION.whl.
create table hub_releases (
    version text primary key,
    manifest text not null,
    signature text not null,
    bytes integer not null,
    published_at text not null
);
