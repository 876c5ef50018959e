-- RFC 3161 timestamps on checkpoints, obtained asynchronously from a TSA.
-- A checkpoint without a row here simply has no timestamp (yet).
CREATE TABLE log_timestamps (
    size       bigint PRIMARY KEY REFERENCES log_checkpoints (size),
    token      bytea NOT NULL,        -- the TimeStampToken (CMS SignedData), DER
    tsa        text NOT NULL,         -- the TSA URL it came from
    gen_time   timestamptz NOT NULL,  -- genTime of the token
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER log_timestamps_no_update BEFORE UPDATE OR DELETE ON log_timestamps
    FOR EACH ROW EXECUTE FUNCTION log_append_only();
