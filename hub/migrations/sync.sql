-- Outbox, seen rows, media uploads, sync state, pulled publications, Telegram posts.
        create table sync_outbox (
            seq integer primary key autoincrement,
            id text not null unique,
            kind text not null,
            source text not null,
            source_id text not null,
            body text not null,
            state text not null default 'pending'
                check (state in ('pending', 'sent', 'conflict', 'refused')),
            attempts integer not null default 0,
            last_error text,
            created_at text not null,
            sent_at text
        );
        create index sync_outbox_state on sync_outbox (state, seq);
        create table sync_seen (
            source text not null,
            source_id text not null,
            marker text,
            fingerprint text not null,
            primary key (source, source_id)
        );
        create table sync_media (
            media_id text primary key,
            name text not null,
            bytes integer not null,
            sha256 text not null,
            state text not null default 'pending' check (state in ('pending', 'done', 'missing', 'failed')),
            bytes_sent integer not null default 0,
            attempts integer not null default 0,
            last_error text,
            created_at text not null,
            done_at text
        );
        create table sync_state (
            key text primary key,
            value text not null
        );
        create table sync_inbox (
            id text primary key,
            seq integer not null,
            kind text not null,
            body text not null,
            received_at text not null,
            applied_at text
        );
        create table telegram_posts (
            notice_id text primary key,
            state text not null default 'pending' check (state in ('pending', 'posted', 'failed')),
            message_ids text not null default '',
            attempts integer not null default 0,
            last_error text,
            created_at text not null,
            posted_at text
        );
