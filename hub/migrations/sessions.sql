-- Sessions kept on the server, so that logging out, a new password or a disabled
-- account ends them; failed logins counted per name and address, with a growing wait.
-- The central server's migration c0003 runs this file too.
create table user_sessions (
    id text primary key,
    user_id text not null references users (id),
    created_at text not null,
    expires_at real not null
);
create index user_sessions_user on user_sessions (user_id);
create table login_throttle (
    key text primary key,
    failures integer not null,
    last_at real not null,
    locked_until real not null default 0
);
drop table login_failures;
