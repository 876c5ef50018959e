package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// EvidenceBlob is a DER value (a certificate, a CRL, an OCSP response) that
// a verification report refers to by its SHA-256 instead of embedding it
// (envelope/verify Report.Stored): where the report would hold
// "der":"<base64>" it holds "der_ref":"<hex SHA-256>". The ledger keeps each
// blob once (verification_evidence), in the transaction that stores the
// first report referring to it, and puts the bytes back in place when a
// report is read, so that readers get the report with its DER.
type EvidenceBlob struct {
	SHA256 [32]byte // of DER
	Kind   string   // "cert", "crl", "ocsp"
	DER    []byte
}

// ErrBadEvidence refuses a document whose verification report refers to
// evidence it does not carry, or whose evidence does not hash to its
// SHA256. Nothing is written.
var ErrBadEvidence = errors.New("ledger: bad verification evidence")

// refMember is how a report (as encoding/json writes it) refers to a blob.
var refMember = []byte(`"der_ref":"`)

// encodeVerification is the stored form of a document's verification report
// and its outcome, after checking that evidence holds exactly the blobs the
// report refers to (by the reference members only: the ledger does not read
// the report otherwise). A nil report gives nil.
func encodeVerification(report any, evidence []EvidenceBlob) ([]byte, string, error) {
	if report == nil {
		if len(evidence) > 0 {
			return nil, "", fmt.Errorf("%w: evidence without a report", ErrBadEvidence)
		}
		return nil, "", nil
	}
	b, outcome, err := marshalReport(report)
	if err != nil {
		return nil, "", err
	}
	have := make(map[[32]byte]bool, len(evidence)) // digest → referred to by the report
	for i, e := range evidence {
		if len(e.DER) == 0 || e.Kind == "" {
			return nil, "", fmt.Errorf("%w: blob %d has no bytes or no kind", ErrBadEvidence, i)
		}
		if sha256.Sum256(e.DER) != e.SHA256 {
			return nil, "", fmt.Errorf("%w: blob %d (%s) does not hash to %x", ErrBadEvidence, i, e.Kind, e.SHA256)
		}
		have[e.SHA256] = false
	}
	unused := len(have)
	for rest := b; ; {
		i := bytes.Index(rest, refMember)
		if i < 0 {
			break
		}
		rest = rest[i+len(refMember):]
		var sum [32]byte
		if len(rest) < 65 || rest[64] != '"' {
			return nil, "", fmt.Errorf("%w: malformed der_ref", ErrBadEvidence)
		}
		if _, err := hex.Decode(sum[:], rest[:64]); err != nil || !lowerHex(rest[:64]) {
			return nil, "", fmt.Errorf("%w: malformed der_ref %q", ErrBadEvidence, rest[:64])
		}
		used, ok := have[sum]
		if !ok {
			return nil, "", fmt.Errorf("%w: der_ref %x without its blob", ErrBadEvidence, sum)
		}
		if !used {
			have[sum], unused = true, unused-1
		}
		rest = rest[65:]
	}
	if unused > 0 { // kept forever, and nothing would ever read it
		return nil, "", fmt.Errorf("%w: %d blobs the report does not refer to", ErrBadEvidence, unused)
	}
	return b, outcome, nil
}

// Outcomer is implemented by a verification report that can say its
// outcome (the "outcome" field of its JSON) without being serialised and
// read back (envelope/verify's Report).
type Outcomer interface {
	VerificationOutcome() string
}

// outcomeOf returns the "outcome" field of report's JSON b: from report
// itself when it is an Outcomer or a plain map, else by reading b.
func outcomeOf(report any, b []byte) string {
	switch r := report.(type) {
	case Outcomer:
		return r.VerificationOutcome()
	case map[string]any:
		s, _ := r["outcome"].(string)
		return s
	case map[string]string:
		return r["outcome"]
	}
	var head struct {
		Outcome string `json:"outcome"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return ""
	}
	return head.Outcome
}

// marshalReport returns the JSON of a verification report and its outcome;
// a report without an outcome is an error.
func marshalReport(report any) ([]byte, string, error) {
	b, err := json.Marshal(report)
	if err != nil {
		return nil, "", fmt.Errorf("verification report: %w", err)
	}
	outcome := outcomeOf(report, b)
	if outcome == "" {
		return nil, "", errors.New("verification report has no outcome")
	}
	return b, outcome, nil
}

// insertVerification stores a document's verification report (encoded by
// encodeVerification; nothing when nil) and its evidence in the accept
// transaction.
func (l *Ledger) insertVerification(ctx context.Context, tx pgx.Tx, id uuid.UUID, report []byte, outcome string,
	evidence []EvidenceBlob, now time.Time) error {
	if report == nil {
		return nil
	}
	if sums, kinds, ders := l.known.missing(evidence); len(sums) > 0 {
		if _, err := tx.Exec(ctx, insertEvidenceSQL, sums, kinds, ders, now); err != nil {
			return fmt.Errorf("insert verification evidence: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO verification_reports (document_id, outcome, report, created_at)
		VALUES ($1, $2, $3, $4)`, id, outcome, report, now); err != nil {
		return fmt.Errorf("insert verification report: %w", err)
	}
	return nil
}

// insertEvidenceSQL adds blobs not stored yet, in digest order (so that two
// transactions adding the same new blobs wait for each other, never
// deadlock).
const insertEvidenceSQL = `INSERT INTO verification_evidence (sha256, kind, der, first_seen)
	SELECT s, k, d, $4 FROM unnest($1::bytea[], $2::text[], $3::bytea[]) AS u(s, k, d) ORDER BY s
	ON CONFLICT DO NOTHING`

// knownEvidence remembers digests the ledger has seen committed in
// verification_evidence (which is append-only), so that a blob every
// document refers to — the signer's CA certificate, a national CRL — is not
// sent again with every accept transaction. Bounded: forgotten wholesale when
// full (the insert is then merely repeated, ON CONFLICT DO NOTHING).
type knownEvidence struct {
	mu   sync.Mutex
	sums map[[32]byte]struct{}
}

const maxKnownEvidence = 4096

// missing returns, as the columns of insertEvidenceSQL, the blobs of
// evidence not known to be stored, without repeats.
func (k *knownEvidence) missing(evidence ...[]EvidenceBlob) (sums [][]byte, kinds []string, ders [][]byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var seen map[[32]byte]bool
	for _, ev := range evidence {
		for _, e := range ev {
			if _, ok := k.sums[e.SHA256]; ok || seen[e.SHA256] {
				continue
			}
			if seen == nil {
				seen = map[[32]byte]bool{}
			}
			seen[e.SHA256] = true
			sums, kinds, ders = append(sums, e.SHA256[:]), append(kinds, e.Kind), append(ders, e.DER)
		}
	}
	return sums, kinds, ders
}

// committed records that the blobs of evidence are stored (call after the
// transaction that inserted them committed).
func (k *knownEvidence) committed(evidence ...[]EvidenceBlob) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, ev := range evidence {
		for _, e := range ev {
			if k.sums == nil || len(k.sums) >= maxKnownEvidence {
				k.sums = make(map[[32]byte]struct{}, 64)
			}
			k.sums[e.SHA256] = struct{}{}
		}
	}
}

// Verification returns the stored verification report of a document, with
// its evidence in place (as it was handed to Accept, before Report.Stored),
// or ErrNotFound when there is none (the document does not exist, or was
// accepted without trust configuration: see its meta.verification).
func (l *Ledger) Verification(ctx context.Context, id string) (json.RawMessage, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil, ErrNotFound
	}
	var b []byte
	err = l.pool.QueryRow(ctx, `SELECT verification_report_full(report) FROM verification_reports WHERE document_id = $1`, uid).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: verification %s: %w", id, classify(err))
	}
	return b, nil
}

// lowerHex reports whether b is lower-case hexadecimal (the form the
// references are written and read back in).
func lowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
