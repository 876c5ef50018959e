package logverify

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// Evidence bundle (schemas/evidence-bundle.md): a zip archive the hub hands
// auditors for one document. Paths inside the archive:
const (
	BundleFormat       = "lienthong-evidence/1"
	BundleManifest     = "manifest.json"
	BundleDocument     = "document.xml"      // the original bytes; absent once purged
	BundleVerification = "verification.json" // the hub's verification report, if any
	BundleCheckpoint   = "checkpoint.txt"    // the signed note every proof is against
	BundleTimestamp    = "timestamp.tsr"     // optional RFC 3161 token over checkpoint.txt
	BundleHubCert      = "certs/hub.pem"     // the hub's evidence certificate (note key)
	BundleChain        = "certs/chain.pem"   // the rest of the hub's certificate chain
	BundleTrust        = "trust.pem"         // anchors the document's signatures were checked against
	BundleReceiptsDir  = "receipts/"         // <leaf index>-<recipient>.xml
	BundleProofsDir    = "proofs/"           // <leaf index>.json, Proof
	BundleStatusDir    = "status/"           // <leaf index>-<recipient>.edxml: edXML status 01 of a delivered receipt
)

// Limits of what VerifyBundle reads.
const (
	maxBundleFiles = 100_000
	maxBundleFile  = 512 << 20
	// DefaultMaxBundleBytes bounds what one bundle may decompress to, all
	// files together (a zip bomb stops here, not in memory).
	DefaultMaxBundleBytes = 1 << 30
)

// Manifest is manifest.json.
type Manifest struct {
	Format         string         `json:"format"`
	DocumentID     string         `json:"document_id"`
	DocumentSHA256 string         `json:"document_sha256"`
	DocumentSize   int64          `json:"document_size"`
	Purged         bool           `json:"purged"`
	Origin         string         `json:"origin"`
	TreeSize       uint64         `json:"tree_size"`
	CreatedAt      time.Time      `json:"created_at"`
	PendingEvents  int            `json:"pending_events"` // events of the document not covered by the checkpoint yet
	Files          []ManifestFile `json:"files"`
}

// ManifestFile is one entry of the manifest.
type ManifestFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Proof is proofs/<index>.json: the inclusion proof of one leaf in the tree
// of the bundle's checkpoint.
type Proof struct {
	LeafIndex uint64   `json:"leaf_index"`
	TreeSize  uint64   `json:"tree_size"`
	LeafHash  []byte   `json:"leaf_hash"` // base64
	Hashes    [][]byte `json:"hashes"`    // base64 each, leaf to root
}

// EncodeProof is the canonical form of a proof file.
func EncodeProof(p Proof) ([]byte, error) { return json.MarshalIndent(p, "", "  ") }

// PartError names the part of a bundle that failed.
type PartError struct {
	Part string
	Err  error
}

func (e *PartError) Error() string { return e.Part + ": " + e.Err.Error() }
func (e *PartError) Unwrap() error { return e.Err }

func partErr(part string, format string, args ...any) error {
	return &PartError{Part: part, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)}
}

// BundleOptions adds the checks that need more than this package.
type BundleOptions struct {
	// VerifySignatures checks the document's signatures offline against
	// the bundle's trust anchors (trust.pem, may be nil) at time at (when
	// the hub accepted it). It returns a one-line summary, or an error. Nil:
	// signatures are not checked (the report says so).
	VerifySignatures func(doc, trustPEM []byte, at time.Time) (string, error)
	// VerifyTimestamp checks an RFC 3161 token over data. Nil: not checked.
	VerifyTimestamp func(token, data []byte) (string, error)
	// MaxBytes bounds the decompressed size of the whole bundle; 0 means
	// DefaultMaxBundleBytes.
	MaxBytes int64
}

// BundleReport lists what VerifyBundle checked, one line each.
type BundleReport struct {
	Checked    []string
	Checkpoint Checkpoint
	Receipts   int
}

func (r *BundleReport) ok(format string, args ...any) {
	r.Checked = append(r.Checked, fmt.Sprintf(format, args...))
}

// VerifyBundle checks an evidence bundle against the hub's evidence
// certificate, the only thing it trusts: the manifest's digests, the
// checkpoint's signature, every inclusion proof against the checkpoint, every
// receipt (canonical, its leaves proven), the document's bytes against the
// proven digest and, through opts, its signatures and the checkpoint's
// timestamp. A failure is a *PartError naming the file.
func VerifyBundle(b []byte, hubCert *x509.Certificate, opts BundleOptions) (*BundleReport, error) {
	rep := &BundleReport{}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return rep, partErr("bundle", "not a zip archive: %v", err)
	}
	if len(zr.File) > maxBundleFiles {
		return rep, partErr("bundle", "%d files", len(zr.File))
	}
	budget := opts.MaxBytes
	if budget <= 0 {
		budget = DefaultMaxBundleBytes
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		name := f.Name
		if name != path.Clean(name) || strings.HasPrefix(name, "/") || strings.HasPrefix(name, "../") || name == ".." {
			return rep, partErr(name, "unsafe path in the archive")
		}
		if strings.HasSuffix(name, "/") {
			continue
		}
		if _, dup := files[name]; dup {
			return rep, partErr(name, "appears twice in the archive")
		}
		rc, err := f.Open()
		if err != nil {
			return rep, partErr(name, "cannot open: %v", err)
		}
		limit := min(int64(maxBundleFile), budget)
		data, err := io.ReadAll(io.LimitReader(rc, limit+1))
		rc.Close()
		if err != nil {
			return rep, partErr(name, "cannot read: %v", err)
		}
		if int64(len(data)) > limit {
			if limit < maxBundleFile {
				return rep, partErr("bundle", "decompresses to more than %d bytes", budget)
			}
			return rep, partErr(name, "larger than %d bytes", maxBundleFile)
		}
		budget -= int64(len(data))
		files[name] = data
	}

	// 1. The manifest: a list of digests. Unsigned, so it only locates a
	// change; the checks below are what prove.
	var m Manifest
	mb, ok := files[BundleManifest]
	if !ok {
		return rep, partErr(BundleManifest, "missing")
	}
	dec := json.NewDecoder(bytes.NewReader(mb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return rep, partErr(BundleManifest, "not a manifest: %v", err)
	}
	if m.Format != BundleFormat {
		return rep, partErr(BundleManifest, "format %q, want %q", m.Format, BundleFormat)
	}
	listed := map[string]bool{}
	for _, f := range m.Files {
		data, ok := files[f.Path]
		if !ok {
			return rep, partErr(f.Path, "listed in the manifest but missing from the bundle")
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(data)) != f.Size {
			return rep, partErr(f.Path, "SHA-256 does not match the manifest (the file was changed)")
		}
		listed[f.Path] = true
	}
	for name := range files {
		if name != BundleManifest && !listed[name] {
			return rep, partErr(name, "not listed in the manifest")
		}
	}
	rep.ok("manifest: %d files, digests match", len(m.Files))

	// 2. The checkpoint, against the hub certificate.
	cpText, ok := files[BundleCheckpoint]
	if !ok {
		return rep, partErr(BundleCheckpoint, "missing")
	}
	cp, err := VerifyCheckpointWithCert(string(cpText), hubCert)
	if err != nil {
		return rep, &PartError{Part: BundleCheckpoint, Err: err}
	}
	if cp.Size != m.TreeSize || cp.Origin != m.Origin {
		return rep, partErr(BundleManifest, "names tree size %d of %q, the checkpoint %d of %q", m.TreeSize, m.Origin, cp.Size, cp.Origin)
	}
	rep.Checkpoint = cp
	rep.ok("checkpoint: signed by %q (certificate %s, serial %s), tree size %d, root %x, time %s",
		cp.Origin, hubCert.Subject.CommonName, hubCert.SerialNumber, cp.Size, cp.Root, cp.Time.Format(time.RFC3339))
	if hc, ok := files[BundleHubCert]; ok {
		if c, err := ParseCertPEM(hc); err != nil || !bytes.Equal(c.Raw, hubCert.Raw) {
			rep.ok("note: %s is not the certificate given; only the given one was trusted", BundleHubCert)
		}
	}
	if tok, ok := files[BundleTimestamp]; ok {
		if opts.VerifyTimestamp == nil {
			rep.ok("timestamp: present, not checked")
		} else if s, err := opts.VerifyTimestamp(tok, cpText); err != nil {
			return rep, &PartError{Part: BundleTimestamp, Err: err}
		} else {
			rep.ok("timestamp: %s", s)
		}
	}

	// 3. Every proof, against the checkpoint's root.
	proofs := map[uint64]Proof{}
	var names []string
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !strings.HasPrefix(name, BundleProofsDir) {
			continue
		}
		var p Proof
		if err := json.Unmarshal(files[name], &p); err != nil {
			return rep, partErr(name, "not a proof: %v", err)
		}
		if canon, err := EncodeProof(p); err != nil || !bytes.Equal(canon, files[name]) {
			return rep, partErr(name, "is not in canonical form (bytes were changed)")
		}
		if name != fmt.Sprintf("%s%d.json", BundleProofsDir, p.LeafIndex) {
			return rep, partErr(name, "holds the proof of leaf %d", p.LeafIndex)
		}
		if p.TreeSize != cp.Size {
			return rep, partErr(name, "is for tree size %d, the checkpoint's is %d", p.TreeSize, cp.Size)
		}
		if err := verifyInclusionHash(p.LeafHash, p.LeafIndex, p.TreeSize, p.Hashes, cp.Root); err != nil {
			return rep, &PartError{Part: name, Err: err}
		}
		proofs[p.LeafIndex] = p
	}
	rep.ok("inclusion proofs: %d, each verifies against the checkpoint's root", len(proofs))

	// 4. Every receipt: canonical, about this document, both leaves proven.
	var proven []byte // the document digest the log proves
	var acceptedAt time.Time
	var acceptedDetail string
	for _, name := range names {
		if !strings.HasPrefix(name, BundleReceiptsDir) {
			continue
		}
		r, err := ParseReceipt(files[name])
		if err != nil {
			return rep, &PartError{Part: name, Err: err}
		}
		if want := fmt.Sprintf("%s%d-%s.xml", BundleReceiptsDir, r.EventIndex, r.Recipient); name != want {
			return rep, partErr(name, "holds the receipt %s", want)
		}
		if r.Accepted.DocumentID != m.DocumentID {
			return rep, partErr(name, "is about document %s, the bundle about %s", r.Accepted.DocumentID, m.DocumentID)
		}
		for _, lf := range []struct {
			idx  uint64
			leaf []byte
		}{{r.AcceptedIndex, r.AcceptedLeaf()}, {r.EventIndex, r.EventLeaf()}} {
			p, ok := proofs[lf.idx]
			if !ok {
				return rep, partErr(name, "no proof of its leaf %d in the bundle", lf.idx)
			}
			if !bytes.Equal(LeafHash(lf.leaf), p.LeafHash) {
				return rep, partErr(name, "does not match leaf %d of the log (the receipt was changed)", lf.idx)
			}
		}
		if proven == nil {
			proven, acceptedAt, acceptedDetail = r.Accepted.DocumentSHA256, r.Accepted.At, r.Accepted.Detail
		} else if !bytes.Equal(proven, r.Accepted.DocumentSHA256) {
			return rep, partErr(name, "names another document digest")
		}
		rep.Receipts++
		rep.ok("receipt %s: %s %s for %s at %s, leaf %d (accepted at leaf %d)", name, r.Event.Kind, r.Event.State,
			r.Recipient, r.Event.At.Format(time.RFC3339Nano), r.EventIndex, r.AcceptedIndex)
	}
	if rep.Receipts == 0 {
		return rep, partErr(BundleReceiptsDir, "no receipt in the bundle")
	}
	if hex.EncodeToString(proven) != m.DocumentSHA256 {
		return rep, partErr(BundleManifest, "names digest %s, the log proves %x", m.DocumentSHA256, proven)
	}

	// 5. The document's bytes against the proven digest.
	doc, hasDoc := files[BundleDocument]
	switch {
	case hasDoc:
		sum := sha256.Sum256(doc)
		if !bytes.Equal(sum[:], proven) {
			return rep, partErr(BundleDocument, "SHA-256 %x is not the digest the log proves (%x)", sum, proven)
		}
		rep.ok("document: %d bytes, SHA-256 %x as proven by the log", len(doc), proven)
	case m.Purged:
		rep.ok("document: bytes purged after the retention period; SHA-256 %x still proven by the log", proven)
	default:
		return rep, partErr(BundleDocument, "missing, and the manifest does not say it was purged")
	}
	if hasDoc {
		switch {
		case opts.VerifySignatures == nil:
			rep.ok("signatures: not checked (no verifier)")
		default:
			s, err := opts.VerifySignatures(doc, files[BundleTrust], acceptedAt)
			if err != nil {
				return rep, &PartError{Part: BundleDocument + " (signature)", Err: err}
			}
			rep.ok("signatures: %s", s)
		}
	}
	statuses := 0
	for _, name := range names {
		if strings.HasPrefix(name, BundleStatusDir) {
			statuses++
		}
	}
	if statuses > 0 {
		rep.ok("edXML status messages: %d, derived from their receipts (covered by the manifest only)", statuses)
	}
	if vb, ok := files[BundleVerification]; ok {
		var report struct {
			Outcome string `json:"outcome"`
		}
		var acc struct {
			Verification string `json:"verification"`
		}
		_ = json.Unmarshal([]byte(acceptedDetail), &acc)
		switch {
		case json.Unmarshal(vb, &report) != nil:
			return rep, partErr(BundleVerification, "not JSON")
		case acc.Verification == "":
			rep.ok("verification report: outcome %q, covered by the manifest only (the accepted leaf records no verdict)", report.Outcome)
		case acc.Verification != report.Outcome:
			return rep, partErr(BundleVerification, "says outcome %q, the accepted leaf records %q", report.Outcome, acc.Verification)
		default:
			rep.ok("verification report: outcome %q, as the accepted leaf records it", report.Outcome)
		}
	}
	if m.PendingEvents > 0 {
		rep.ok("note: %d later events of the document were not yet in a checkpoint when the bundle was made", m.PendingEvents)
	}
	return rep, nil
}

// verifyInclusionHash is VerifyInclusion given the leaf hash.
func verifyInclusionHash(leafHash []byte, index, size uint64, proofHashes [][]byte, root []byte) error {
	if len(leafHash) != sha256.Size {
		return fmt.Errorf("%w: leaf hash of %d bytes", ErrInvalid, len(leafHash))
	}
	if err := verifyInclusionOfHash(index, size, leafHash, proofHashes, root); err != nil {
		return fmt.Errorf("%w: inclusion proof of leaf %d in tree of size %d: %v", ErrInvalid, index, size, err)
	}
	return nil
}
