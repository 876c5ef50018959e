-- The ledger: the durable record of every document, delivery and event.
-- Kafka moves work between stages; these tables are the truth.

CREATE TABLE organs (
    code              text PRIMARY KEY,
    name              text NOT NULL,
    channel           text NOT NULL CHECK (channel IN ('push', 'pull', 'axis', 'partner')),
    endpoint          text NOT NULL DEFAULT '',
    old_codes         text[] NOT NULL DEFAULT '{}',
    cert_fingerprints text[] NOT NULL DEFAULT '{}', -- SHA-256 (hex) of signing certificates bound to the organ
    demo              boolean NOT NULL DEFAULT false,
    active            boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Credentials that map a caller to an organ or a role. Tokens are stored hashed.
CREATE TABLE principals (
    id               bigserial PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('organ', 'auditor', 'operator')),
    organ            text REFERENCES organs (code),
    name             text NOT NULL DEFAULT '',
    token_sha256     bytea UNIQUE,
    cert_sha256      bytea UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'organ') = (organ IS NOT NULL)),
    CHECK (token_sha256 IS NOT NULL OR cert_sha256 IS NOT NULL)
);

CREATE TABLE documents (
    id                uuid PRIMARY KEY,
    sender            text NOT NULL REFERENCES organs (code),
    doc_ref           text NOT NULL,           -- the envelope's DocumentId
    format            text NOT NULL,
    subject           text NOT NULL DEFAULT '',
    code_number       text NOT NULL DEFAULT '',
    code_notation     text NOT NULL DEFAULT '',
    promulgation_date text NOT NULL DEFAULT '',
    business_type     smallint NOT NULL DEFAULT 0,
    response_for      text NOT NULL DEFAULT '', -- DocumentId of the original (statuses, revocations)
    status_code       text NOT NULL DEFAULT '',
    sha256            bytea NOT NULL,
    size              bigint NOT NULL,
    body              bytea NOT NULL,           -- the original bytes, exactly as received
    meta              jsonb NOT NULL DEFAULT '{}',
    source            text NOT NULL DEFAULT '', -- e.g. "axis:<systemid>:<docId>" for idempotent intake
    received_at       timestamptz NOT NULL,
    UNIQUE (sender, doc_ref)
);
CREATE UNIQUE INDEX documents_source ON documents (source) WHERE source <> '';

CREATE TABLE deliveries (
    id              bigserial PRIMARY KEY,
    document_id     uuid NOT NULL REFERENCES documents (id),
    recipient       text NOT NULL REFERENCES organs (code),
    state           text NOT NULL,
    seq             bigint,                  -- per-recipient sequence, set when routed
    channel         text NOT NULL DEFAULT '',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_error      text NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    acknowledged_at timestamptz,
    UNIQUE (document_id, recipient)
);
CREATE INDEX deliveries_inbox ON deliveries (recipient, id) WHERE state = 'delivered' AND channel = 'pull';
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'retrying';
CREATE INDEX deliveries_stuck ON deliveries (updated_at) WHERE state IN ('accepted', 'routed', 'delivering');

CREATE TABLE recipient_sequences (
    recipient text PRIMARY KEY,
    last_seq  bigint NOT NULL
);

-- Append-only history of every state change.
CREATE TABLE events (
    id          bigserial PRIMARY KEY,
    document_id uuid NOT NULL REFERENCES documents (id),
    recipient   text NOT NULL DEFAULT '',
    kind        text NOT NULL,
    state       text NOT NULL DEFAULT '',
    detail      jsonb NOT NULL DEFAULT '{}',
    at          timestamptz NOT NULL
);
CREATE INDEX events_document ON events (document_id, id);

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END $$;
CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();

-- Transactional outbox: written in the same transaction as the state it announces.
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    key        text NOT NULL,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
