-- Who suspended: a suspension by an admin of the organization is lifted only by an admin.
alter table access_tokens add column suspended_by_admin boolean not null default false;
-- A token suspended because a token it descends from was: the id of that token, whose resumption
-- lifts it (null for a token suspended on its own).
alter table access_tokens add column suspended_with text;
create index access_tokens_suspended_with on access_tokens (org_id, suspended_with)
    where suspended_with is not null;
