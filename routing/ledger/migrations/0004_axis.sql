-- The national document-exchange axis (adapters/axis): what the hub took from
-- it and what it sent to it. Both tables make the axis edge idempotent.

-- One row per axis package accepted (several axis docIds may name one document).
CREATE TABLE axis_inbound (
    system_id    text NOT NULL,
    axis_doc_id  text NOT NULL,
    document_id  uuid NOT NULL REFERENCES documents (id),
    received_at  timestamptz NOT NULL,
    PRIMARY KEY (system_id, axis_doc_id)
);
CREATE INDEX axis_inbound_document ON axis_inbound (document_id);

-- One row per package sent with sendEdoc: a delivery ("<document id>/<recipient>")
-- or a status the hub built ("<document id>/<recipient>/status/<code>").
CREATE TABLE axis_outbound (
    key          text PRIMARY KEY,
    document_id  uuid NOT NULL REFERENCES documents (id),
    recipient    text NOT NULL,
    message_type text NOT NULL CHECK (message_type IN ('edoc', 'status')),
    system_id    text NOT NULL,
    axis_doc_id  text NOT NULL DEFAULT '',
    sent_at      timestamptz NOT NULL
);
