-- Audit events are always read per organization, so the organization leads the primary key: the
-- key itself serves "newest first" pages, and each new event updates one index fewer.
alter table audit_events drop constraint audit_events_pkey;
drop index audit_events_org;
alter table audit_events add constraint audit_events_pkey primary key (org_id, id);
