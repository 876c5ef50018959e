-- Verification evidence, content-addressed. A verification report names the
-- certificates of each signature's chain and the CRLs and OCSP responses its
-- revocation check used; the same bytes recur in the report of every
-- document signed under the same chain (and one national CRL can be large).
-- They are kept here once each, keyed by the SHA-256 of the DER, written in
-- the accept transaction together with the report that refers to them; the
-- stored report holds "der_ref": "<hex SHA-256>" where the bytes would be
-- (envelope/verify Report.Stored).
--
-- Append-only: rows are never updated or deleted (a report of any age may
-- refer to them, and the ledger remembers which digests are stored).
CREATE TABLE verification_evidence (
    sha256     bytea PRIMARY KEY CHECK (octet_length(sha256) = 32),
    kind       text NOT NULL, -- cert, crl, ocsp
    der        bytea NOT NULL,
    first_seen timestamptz NOT NULL
);

-- verification_report_full gives a stored report with its evidence in place:
-- each "der_ref": "<hex>" member becomes "der": "<base64 DER>" (standard
-- base64, as encoding/json writes []byte), so that readers get the JSON a
-- report with embedded DER had; jsonb orders the members itself, so the
-- result is the same jsonb value. The pattern can only match a member: in
-- jsonb's text form every quote inside a string is escaped. A reference
-- whose bytes are missing, or do not hash to it, is an error rather than a
-- report without its evidence.
--
-- Reports stored before this migration embed their DER and are returned
-- unchanged: they are left as they are (rewriting every stored report here
-- would hold the table for the whole upgrade and write it again in the WAL).
CREATE FUNCTION verification_report_full(report jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE STRICT AS $$
DECLARE
    t   text := report::text;
    ref text;
    der bytea;
BEGIN
    IF strpos(t, '"der_ref": "') = 0 THEN
        RETURN report;
    END IF;
    FOR ref IN SELECT DISTINCT m[1] FROM regexp_matches(t, '"der_ref": "([0-9a-f]{64})"', 'g') AS m LOOP
        SELECT e.der INTO der FROM verification_evidence e
            WHERE e.sha256 = decode(ref, 'hex') AND sha256(e.der) = e.sha256;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'verification report refers to evidence % that is not stored', ref
                USING ERRCODE = 'data_corrupted';
        END IF;
        t := replace(t, '"der_ref": "' || ref || '"', '"der": "' || translate(encode(der, 'base64'), E'\n', '') || '"');
    END LOOP;
    RETURN t::jsonb;
END $$;
