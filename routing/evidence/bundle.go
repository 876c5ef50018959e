package evidence

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"lienthong/routing/blob"
	"lienthong/routing/evidence/logverify"
)

// BundleConfig is what a bundle carries besides the log: the hub's
// certificates (PEM) and the trust anchors signatures are checked against.
type BundleConfig struct {
	HubCertPEM []byte // the evidence certificate: its Ed25519 key is the note key
	ChainPEM   []byte // the rest of the hub's chain (hub TLS/signing certificate, CA)
	TrustPEM   []byte // optional: anchors of the trust domains
	Now        func() time.Time
}

// Bundle builds the evidence bundle (zip, logverify.VerifyBundle) of a
// document in memory; see WriteBundle.
func (l *Log) Bundle(ctx context.Context, documentID string, cfg BundleConfig) ([]byte, error) {
	var buf bytes.Buffer
	if err := l.WriteBundle(ctx, &buf, documentID, cfg, nil); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteBundle writes the evidence bundle of a document to w: its original
// bytes (unless purged), the verification report stored with it, every
// receipt under the latest checkpoint, the inclusion proofs, the checkpoint,
// its RFC 3161 timestamp if there is one, the hub's certificates and a
// manifest of SHA-256 digests (written last). Everything is read before the
// first byte is written, so an error (ErrNotFound) leaves w untouched;
// ready, if not nil, is called just before writing starts (to send headers).
func (l *Log) WriteBundle(ctx context.Context, w io.Writer, documentID string, cfg BundleConfig, ready func()) error {
	uid, err := uuid.Parse(documentID)
	if err != nil {
		return fmt.Errorf("%w: document %q", ErrNotFound, documentID)
	}
	var sum []byte
	var size int64
	var body, blobKey []byte
	var report []byte
	// The verification report: the verification_reports row written in
	// the accept transaction, with its certificates and revocation evidence
	// in place (ledger migration 0015), or (documents accepted without trust
	// configuration, or before that table existed) documents.meta.
	err = l.pool.QueryRow(ctx, `SELECT d.sha256, d.size, d.body, d.body_blob,
		coalesce((SELECT verification_report_full(v.report) FROM verification_reports v WHERE v.document_id = d.id),
			d.meta -> 'verification')::text
		FROM documents d WHERE d.id = $1`, uid).Scan(&sum, &size, &body, &blobKey, &report)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: document %s", ErrNotFound, uid)
	}
	if err != nil {
		return fmt.Errorf("evidence: bundle: document: %w", err)
	}
	set, err := l.Receipts(ctx, uid.String())
	if err != nil {
		return err
	}
	var token []byte
	err = l.pool.QueryRow(ctx, `SELECT token FROM log_timestamps WHERE size = $1`, int64(set.Checkpoint.Size)).Scan(&token)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("evidence: bundle: timestamp: %w", err)
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	purged := len(body) == 0 && size > 0 && blobKey == nil
	var large io.ReadCloser // a large body, streamed from the blob store into the zip
	if blobKey != nil {
		rc, _, err := blob.NewStore(l.pool).Open(ctx, blobKey)
		if err != nil {
			return fmt.Errorf("evidence: bundle: document body: %w", err)
		}
		defer rc.Close()
		large = rc
	}
	m := logverify.Manifest{Format: logverify.BundleFormat, DocumentID: uid.String(), DocumentSHA256: hex.EncodeToString(sum),
		DocumentSize: size, Purged: purged, Origin: set.Checkpoint.Origin, TreeSize: set.Checkpoint.Size,
		CreatedAt: now().UTC(), PendingEvents: set.Pending}

	if ready != nil {
		ready()
	}
	zw := zip.NewWriter(w)
	add := func(name string, data []byte) error {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: m.CreatedAt})
		if err != nil {
			return err
		}
		if _, err := fw.Write(data); err != nil {
			return err
		}
		s := sha256.Sum256(data)
		m.Files = append(m.Files, logverify.ManifestFile{Path: name, SHA256: hex.EncodeToString(s[:]), Size: int64(len(data))})
		return nil
	}
	files := []struct {
		name string
		data []byte
		skip bool
	}{
		{logverify.BundleDocument, body, purged},
		{logverify.BundleVerification, []byte(report), report == nil || string(report) == "null"},
		{logverify.BundleCheckpoint, []byte(set.Checkpoint.Note), false},
		{logverify.BundleTimestamp, token, len(token) == 0},
		{logverify.BundleHubCert, cfg.HubCertPEM, len(cfg.HubCertPEM) == 0},
		{logverify.BundleChain, cfg.ChainPEM, len(cfg.ChainPEM) == 0},
		{logverify.BundleTrust, cfg.TrustPEM, len(cfg.TrustPEM) == 0},
	}
	for i, f := range files {
		if i == 0 && large != nil {
			if err := addStream(zw, &m, f.name, large); err != nil {
				return fmt.Errorf("evidence: bundle: %w", err)
			}
			continue
		}
		if !f.skip {
			if err := add(f.name, f.data); err != nil {
				return fmt.Errorf("evidence: bundle: %w", err)
			}
		}
	}
	for _, r := range set.Receipts {
		if err := add(logverify.BundleReceiptsDir+r.Name, r.XML); err != nil {
			return fmt.Errorf("evidence: bundle: %w", err)
		}
		if r.EdXMLStatus != nil {
			if err := add(logverify.BundleStatusDir+strings.TrimSuffix(r.Name, ".xml")+".edxml", r.EdXMLStatus); err != nil {
				return fmt.Errorf("evidence: bundle: %w", err)
			}
		}
	}
	for _, p := range set.Proofs {
		b, err := logverify.EncodeProof(p)
		if err != nil {
			return err
		}
		if err := add(fmt.Sprintf("%s%d.json", logverify.BundleProofsDir, p.LeafIndex), b); err != nil {
			return fmt.Errorf("evidence: bundle: %w", err)
		}
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	mw, err := zw.Create(logverify.BundleManifest)
	if err == nil {
		_, err = mw.Write(mb)
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		return fmt.Errorf("evidence: bundle: %w", err)
	}
	return nil
}

// addStream writes a file of the bundle from r, hashing it as it goes.
func addStream(zw *zip.Writer, m *logverify.Manifest, name string, r io.Reader) error {
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: m.CreatedAt})
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(fw, h), r)
	if err != nil {
		return err
	}
	m.Files = append(m.Files, logverify.ManifestFile{Path: name, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n})
	return nil
}
