-- Who suspended: a suspension by an admin of the organization is lifted only by an admin.
alter table access_tokens add column suspended_by_admin boolean not null default false;
