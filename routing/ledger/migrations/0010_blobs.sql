-- Large bodies live in a content-addressed blob store (routing/blob):
-- PostgreSQL large objects keyed by the SHA-256 of their bytes. A document
-- whose body is there has body NULL and body_blob = its digest; small bodies
-- stay inline in body.
CREATE TABLE blobs (
    sha256     bytea PRIMARY KEY CHECK (octet_length(sha256) = 32),
    oid        oid NOT NULL UNIQUE,
    size       bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE documents ALTER COLUMN body DROP NOT NULL;
ALTER TABLE documents ADD COLUMN body_blob bytea REFERENCES blobs (sha256);
ALTER TABLE documents ADD CONSTRAINT documents_body_or_blob CHECK (body IS NOT NULL OR body_blob IS NOT NULL);
