-- State, media, notices, feedback, captive-portal clients and clock trust.
        create table hub_state (
            key text primary key,
            value text not null
        );
        create table media (
            id text primary key,
            hub_id text not null,
            kind text not null check (kind in ('audio', 'image')),
            master_name text,
            web_name text not null,
            web_type text not null,
            loud_name text,
            duration_ms integer,
            bytes integer not null,
            sha256 text not null,
            original_format text,
            created_at text not null
        );
        create table notices (
            id text primary key,
            hub_id text not null,
            origin text not null default 'hub',
            title_km text not null default '',
            title_en text not null default '',
            body_km text not null default '',
            body_en text not null default '',
            urgent integer not null default 0,
            pinned integer not null default 0,
            image_id text references media (id),
            audio_id text references media (id),
            published_at text not null,
            expires_at text,
            created_at text not null,
            updated_at text not null,
            clock_trusted integer not null default 1
        );
        create index notices_listing on notices (expires_at, urgent, pinned, published_at);
        create table feedback (
            id text primary key,
            hub_id text not null,
            receipt text not null unique,
            source text not null check (source in ('portal', 'kiosk', 'clerk')),
            category text not null,
            body text not null default '',
            name text not null default '',
            phone text not null default '',
            village text not null default '',
            lang text not null default 'km',
            consent_share integer not null default 0,
            audio_id text references media (id),
            status text not null default 'new'
                check (status in ('new', 'in_progress', 'answered', 'closed')),
            reply text not null default '',
            replied_at text,
            created_at text not null,
            updated_at text not null,
            clock_trusted integer not null default 1
        );
        create index feedback_inbox on feedback (status, category, created_at);
        create table portal_clients (
            client text primary key,
            accepted_at text not null
        );
        create table clock_trust (
            id integer primary key check (id = 1),
            source text not null,
            boot_id text not null,
            set_at text not null,
            offset_seconds real not null default 0
        );
