CREATE TABLE _migrations (name text primary key, applied_at text not null);
CREATE TABLE announcements (
            id text primary key,
            hub_id text not null,
            title text not null default '',
            audio_id text not null references media (id),
            notice_id text references notices (id),
            rrule text,
            repeats integer not null default 1 check (repeats between 1 and 5),
            urgent integer not null default 0,
            active integer not null default 1,
            scheduled_until text not null,
            next_at text,
            created_at text not null,
            updated_at text not null,
            clock_trusted integer not null default 1
        );
CREATE INDEX announcements_next on announcements (active, next_at);
CREATE TABLE clock_trust (
            id integer primary key check (id = 1),
            source text not null,
            boot_id text not null,
            set_at text not null,
            offset_seconds real not null default 0
        );
CREATE TABLE feedback (
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
CREATE INDEX feedback_inbox on feedback (status, category, created_at);
CREATE TABLE hub_state (
            key text primary key,
            value text not null
        );
CREATE TABLE login_failures (
            id integer primary key,
            key text not null,
            at real not null
        );
CREATE INDEX login_failures_key on login_failures (key, at);
CREATE TABLE media (
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
CREATE TABLE notices (
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
CREATE INDEX notices_listing on notices (expires_at, urgent, pinned, published_at);
CREATE TABLE occurrences (
            id text primary key,
            hub_id text not null,
            announcement_id text not null references announcements (id),
            due_at text not null,
            play_after text not null,
            urgent integer not null default 0,
            play_now integer not null default 0,
            state text not null default 'due'
                check (state in ('due', 'playing', 'played', 'missed', 'failed', 'cancelled')),
            started_at text,
            ended_at text,
            detail text not null default '',
            created_at text not null,
            updated_at text not null,
            unique (announcement_id, due_at)
        );
CREATE INDEX occurrences_queue on occurrences (state, play_after);
CREATE TABLE play_log (
            id text primary key,
            hub_id text not null,
            created_at text not null,
            occurrence_id text references occurrences (id),
            announcement_id text references announcements (id),
            title text not null default '',
            due_at text,
            started_at text,
            ended_at text,
            duration_ms integer not null default 0,
            repeats integer not null default 1,
            outcome text not null check (outcome in ('played', 'missed', 'failed')),
            detail text not null default '',
            clock_trusted integer not null default 1
        );
CREATE INDEX play_log_time on play_log (created_at);
CREATE TABLE portal_clients (
            client text primary key,
            accepted_at text not null
        );
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
-- (no sql)
CREATE TABLE sqlite_sequence(name,seq);
CREATE TABLE sync_inbox (
            id text primary key,
            seq integer not null,
            kind text not null,
            body text not null,
            received_at text not null,
            applied_at text
        );
CREATE TABLE sync_media (
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
CREATE TABLE sync_outbox (
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
CREATE INDEX sync_outbox_state on sync_outbox (state, seq);
CREATE TABLE sync_seen (
            source text not null,
            source_id text not null,
            marker text,
            fingerprint text not null,
            primary key (source, source_id)
        );
CREATE TABLE sync_state (
            key text primary key,
            value text not null
        );
CREATE TABLE telegram_posts (
            notice_id text primary key,
            state text not null default 'pending' check (state in ('pending', 'posted', 'failed')),
            message_ids text not null default '',
            attempts integer not null default 0,
            last_error text,
            created_at text not null,
            posted_at text
        );
CREATE TABLE transcripts (
            id text primary key,
            hub_id text not null,
            created_at text not null,
            updated_at text not null,
            media_id text not null unique references media (id),
            feedback_id text references feedback (id),
            source text not null default '',
            lang text not null,
            state text not null default 'pending'
                check (state in ('pending', 'no_model', 'done', 'failed')),
            attempts integer not null default 0,
            engine text not null default '',
            model text not null default '',
            text text not null default '',
            words text not null default '[]',
            confidence real,
            error text not null default '',
            audio_seconds real,
            processing_seconds real,
            transcribed_at text,
            corrected_text text,
            verified integer not null default 0,
            verified_by text,
            verified_at text
        );
CREATE INDEX transcripts_feedback on transcripts (feedback_id);
CREATE INDEX transcripts_queue on transcripts (state, created_at);
CREATE TABLE users (
            id text primary key,
            username text not null unique,
            password_hash text not null,
            role text not null check (role in ('clerk', 'admin')),
            created_at text not null,
            disabled integer not null default 0
        );
CREATE TABLE voice_prompts (
            key text primary key,
            hub_id text not null,
            media_id text not null references media (id),
            updated_at text not null,
            updated_by text not null default ''
        );
