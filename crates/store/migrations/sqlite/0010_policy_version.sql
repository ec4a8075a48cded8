-- A policy's version, raised by every change (see the PostgreSQL migration of the same name).
alter table org_policies add column version integer not null default 1;
