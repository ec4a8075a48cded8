-- Workload identity federation: an organization admin's trust rule under which a workload's OIDC
-- token (GitHub Actions, GitLab CI, Kubernetes) is exchanged for a short-lived assume token, with
-- no secret stored anywhere (RFC 8693).
create table federated_credentials (
    id          text primary key,
    org_id      text not null,
    name        text not null,
    issuer      text not null,
    audience    text not null,
    -- The exact `sub` the workload's token must carry, and/or `claims`: a JSON object of claim
    -- name to exact string value, all of which must match.
    subject     text,
    claims      text,
    assignments text[] not null,
    read_only   boolean not null,
    anonymize   boolean not null,
    created_by  text not null,
    created_at  timestamptz not null
);
create index federated_credentials_org on federated_credentials (org_id, created_at desc, id desc);
-- An exchange reads the credentials of the token's issuer.
create index federated_credentials_issuer on federated_credentials (issuer);

-- The `jti`s of the workload tokens exchanged, kept until the token's `exp`: a second use is
-- refused on every replica (the primary key decides which of two racing exchanges wins).
create table federation_replays (
    issuer     text not null,
    jti        text not null,
    expires_at timestamptz not null,
    primary key (issuer, jti)
);
create index federation_replays_expiry on federation_replays (expires_at);

alter table audit_events
    drop constraint audit_events_action_check,
    add constraint audit_events_action_check
        check (action in ('created', 'revoked', 'rotated', 'suspended', 'resumed', 'policy_changed',
                          'webhook_created', 'webhook_deleted', 'webhook_secret_rotated',
                          'federated_credential_created', 'federated_credential_deleted')) not valid;
