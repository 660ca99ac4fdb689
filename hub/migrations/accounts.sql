-- Clerk and admin accounts, and failed logins; the central server has the same tables.
        create table users (
            id text primary key,
            username text not null unique,
            password_hash text not null,
            role text not null check (role in ('clerk', 'admin')),
            created_at text not null,
            disabled integer not null default 0
        );
        create table login_failures (
            id integer primary key,
            key text not null,
            at real not null
        );
        create index login_failures_key on login_failures (key, at);
