-- The edXML business flows (statuses 01–06, recall 13/15/16, update, replacement)
-- and the deadlines that produce negative evidence (overdue events).

-- A DocumentId may now carry several versions: an update or a replacement under
-- the same DocumentId, and the status packages of one recipient about one
-- original (a status package's DocumentId is the original's). Plain documents
-- stay at version 1, so the same DocumentId with other content is still a
-- conflict.
ALTER TABLE documents ADD COLUMN version integer NOT NULL DEFAULT 1;
ALTER TABLE documents ADD COLUMN original_id uuid REFERENCES documents (id); -- the document a status, recall, update or replacement is about
ALTER TABLE documents ADD COLUMN superseded_by uuid REFERENCES documents (id); -- the update or replacement that supersedes it
ALTER TABLE documents ADD COLUMN due_at timestamptz;                          -- DueDate (hạn xử lý), end of that day in Vietnam
ALTER TABLE documents DROP CONSTRAINT documents_sender_doc_ref_key;
CREATE UNIQUE INDEX documents_sender_doc_ref_version ON documents (sender, doc_ref, version);
CREATE INDEX documents_original ON documents (original_id) WHERE original_id IS NOT NULL;
CREATE INDEX documents_due ON documents (due_at) WHERE due_at IS NOT NULL;

-- Business state of one (document, recipient) pair. A missing row means
-- "pending": nothing reported yet.
CREATE TABLE business_states (
    document_id  uuid NOT NULL REFERENCES documents (id),
    recipient    text NOT NULL REFERENCES organs (code),
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'arrived', 'refused', 'registered', 'assigned', 'processing',
                                  'completed', 'recalled', 'updated', 'replaced')),
    last_status  text NOT NULL DEFAULT '',   -- last status code recorded (01 … 16)
    statuses     text[] NOT NULL DEFAULT '{}', -- codes 01–06 recorded so far, in order
    recall       text NOT NULL DEFAULT ''    -- '', 'pending', 'accepted', 'refused'
                 CHECK (recall IN ('', 'pending', 'accepted', 'refused')),
    recall_by    uuid REFERENCES documents (id), -- the status 13 or revocation (type 1) that asked
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (document_id, recipient)
);

-- Deadlines per recipient organ; the row with organ '*' holds the defaults.
CREATE TABLE flow_deadlines (
    organ            text PRIMARY KEY,
    delivery_within  interval NOT NULL, -- accepted → delivered
    ack_within       interval NOT NULL  -- delivered → status 01 (đã đến)
);
INSERT INTO flow_deadlines (organ, delivery_within, ack_within) VALUES ('*', interval '4 hours', interval '24 hours');

-- What the deadline checker scans: recent, undelivered or delivered rows.
CREATE INDEX deliveries_undelivered ON deliveries (document_id) WHERE delivered_at IS NULL;
CREATE INDEX deliveries_delivered_at ON deliveries (delivered_at) WHERE delivered_at IS NOT NULL;
CREATE INDEX documents_received_at ON documents (received_at);

-- Each overdue condition is reported once per (document, recipient, kind).
CREATE TABLE overdue_marks (
    document_id uuid NOT NULL REFERENCES documents (id),
    recipient   text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('delivery', 'acknowledgement', 'due_date')),
    deadline    timestamptz NOT NULL,
    marked_at   timestamptz NOT NULL,
    PRIMARY KEY (document_id, recipient, kind)
);
