-- Signing keys of the four key sets. The private key is sealed with AES-256-GCM under the
-- key-encryption key (nonce per key; key set and kid as associated data) and never stored in clear.
create table signing_keys (
    -- RFC 7638 thumbprint of the public key.
    kid                text primary key,
    key_set            text not null
        constraint signing_keys_key_set_check
        check (key_set in ('api', 'public', 'portal-preview', 'contact-identification')),
    -- next: published, not yet signing; active: signing; retired: published, no longer signing;
    -- revoked: not published, its tokens are refused.
    state              text not null
        constraint signing_keys_state_check
        check (state in ('next', 'active', 'retired', 'revoked')),
    n                  text not null,
    e                  text not null,
    private_key_sealed bytea not null,
    nonce              bytea not null,
    created_at         timestamptz not null default now(),
    activated_at       timestamptz,
    retired_at         timestamptz,
    revoked_at         timestamptz
);

-- Exactly one signing key per set; a second replica's insert fails instead of forking the set.
create unique index signing_keys_one_active on signing_keys (key_set) where state = 'active';
