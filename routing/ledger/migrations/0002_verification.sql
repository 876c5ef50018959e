-- Verification reports (envelope/verify): one per document accepted while the
-- hub had trust configuration, written in the accept transaction. The report
-- holds each signature's verdict, signer, chain (DER), algorithms and the
-- revocation evidence used, so that a verdict can be re-checked later.
CREATE TABLE verification_reports (
    document_id uuid PRIMARY KEY REFERENCES documents (id),
    outcome     text NOT NULL,
    report      jsonb NOT NULL,
    created_at  timestamptz NOT NULL
);
