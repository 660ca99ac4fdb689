-- Urgent broadcasts from the central server: the publication an announcement
-- came from (its proof of play goes back as that publication's acknowledgement)
-- and when it expires (an expired announcement never plays).
alter table announcements add column publication_id text;
alter table announcements add column expires_at text;
create index announcements_publication on announcements (publication_id);
