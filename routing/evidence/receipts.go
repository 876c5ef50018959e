package evidence

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/google/uuid"

	"lienthong/routing/evidence/logverify"
)

// IssuedReceipt is one receipt of a document: for one (event, recipient).
type IssuedReceipt struct {
	Name      string `json:"name"` // <leaf index>-<recipient>.xml, its name in a bundle
	Recipient string `json:"recipient"`
	Kind      string `json:"kind"`
	State     string `json:"state,omitempty"`
	EventID   int64  `json:"event_id"`
	LeafIndex uint64 `json:"leaf_index"`
	XML       []byte `json:"-"`
	// EdXMLStatus is, for a delivered receipt of an edXML document, the
	// matching edXML status 01 (EdXMLStatusReceived); nil otherwise.
	EdXMLStatus []byte `json:"-"`
}

// ReceiptSet is every receipt of a document the latest checkpoint covers,
// with the inclusion proofs of their leaves against that checkpoint.
type ReceiptSet struct {
	DocumentID string
	Checkpoint SignedCheckpoint
	Receipts   []IssuedReceipt
	Proofs     map[uint64]logverify.Proof
	// Pending counts the document's events not covered by the checkpoint
	// yet (not sequenced, or sequenced after it was signed).
	Pending int
}

// Receipts builds the receipts of a document: for each of its events and
// each recipient the event concerns (its own recipient, or every recipient
// of the document for document-wide events such as accepted). They are
// derived from the stored leaves, never from mutable rows: a leaf whose bytes
// no longer hash to its stored leaf hash is refused (*TamperError). ErrNotFound when
// the document has no event in the log under a checkpoint yet.
func (l *Log) Receipts(ctx context.Context, documentID string) (ReceiptSet, error) {
	uid, err := uuid.Parse(documentID)
	if err != nil {
		return ReceiptSet{}, fmt.Errorf("%w: document %q", ErrNotFound, documentID)
	}
	set := ReceiptSet{DocumentID: uid.String(), Proofs: map[uint64]logverify.Proof{}}
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		return set, err
	}
	set.Checkpoint = cp
	type stored struct {
		idx  uint64
		leaf logverify.Leaf
		hash []byte // the stored leaf hash
	}
	var leaves []stored
	var acc *stored
	var scanErr error
	// The document's events, each with its leaf (log_runs: log_leaf_index).
	rows, err := l.pool.Query(ctx, `SELECT q.id, q.idx, l.event_id, l.leaf, l.leaf_hash FROM
		(SELECT e.id, log_leaf_index(e.id) AS idx FROM events e WHERE e.document_id = $1 OFFSET 0) q
		LEFT JOIN log_leaves l ON l.leaf_index = q.idx
		ORDER BY q.id`, uid)
	if err != nil {
		return set, fmt.Errorf("evidence: receipts: %w", err)
	}
	for rows.Next() {
		var id int64
		var idx, of *int64
		var b, h []byte
		if err := rows.Scan(&id, &idx, &of, &b, &h); err != nil {
			scanErr = err
			break
		}
		if idx == nil || uint64(*idx) >= cp.Size {
			set.Pending++
			continue
		}
		if of == nil || *of != id {
			scanErr = &TamperError{LeafIndex: uint64(*idx), EventID: id, Reason: "log_runs names this leaf for the event, which the leaf is not of"}
			break
		}
		if err := checkStored(uint64(*idx), id, b, h); err != nil {
			scanErr = err
			break
		}
		lf, err := logverify.DecodeLeaf(b)
		if err != nil {
			scanErr = fmt.Errorf("leaf %d: %w", *idx, err)
			break
		}
		leaves = append(leaves, stored{uint64(*idx), lf, h})
		if lf.Kind == "accepted" && acc == nil {
			a := leaves[len(leaves)-1]
			acc = &a
		}
	}
	rows.Close()
	if scanErr == nil {
		scanErr = rows.Err()
	}
	if scanErr != nil {
		return set, fmt.Errorf("evidence: receipts: %w", scanErr)
	}
	if acc == nil {
		return set, fmt.Errorf("%w: document %s has no accepted event under checkpoint %d yet", ErrNotFound, uid, cp.Size)
	}
	var d struct {
		Recipients []string `json:"recipients"`
	}
	if err := json.Unmarshal([]byte(acc.leaf.Detail), &d); err != nil {
		return set, fmt.Errorf("evidence: receipts: accepted detail: %w", err)
	}
	var ed struct {
		format, docRef, code, date string
		names                      map[string]string
	}
	if err := l.pool.QueryRow(ctx, `SELECT d.format, d.doc_ref,
		CASE WHEN d.code_notation = '' THEN d.code_number ELSE d.code_number || '/' || d.code_notation END,
		d.promulgation_date, coalesce(jsonb_object_agg(o.code, o.name) FILTER (WHERE o.code IS NOT NULL), '{}')
		FROM documents d LEFT JOIN deliveries r ON r.document_id = d.id LEFT JOIN organs o ON o.code = r.recipient
		WHERE d.id = $1 GROUP BY d.id`, uid).Scan(&ed.format, &ed.docRef, &ed.code, &ed.date, &ed.names); err != nil {
		return set, fmt.Errorf("evidence: receipts: document: %w", err)
	}
	sender := ""
	var sd struct {
		Sender string `json:"sender"`
	}
	if json.Unmarshal([]byte(acc.leaf.Detail), &sd) == nil {
		sender = sd.Sender
	}
	need := map[uint64][]byte{acc.idx: acc.hash}
	for _, s := range leaves {
		recips := []string{s.leaf.Recipient}
		if s.leaf.Recipient == "" {
			recips = d.Recipients
		}
		for _, rc := range recips {
			r, err := logverify.NewReceipt(rc, acc.idx, acc.leaf, s.idx, s.leaf)
			if err != nil {
				return set, fmt.Errorf("evidence: receipt of leaf %d for %s: %w", s.idx, rc, err)
			}
			ir := IssuedReceipt{Name: fmt.Sprintf("%d-%s.xml", s.idx, rc), Recipient: rc,
				Kind: s.leaf.Kind, State: s.leaf.State, EventID: s.leaf.EventID, LeafIndex: s.idx, XML: r.Encode()}
			if s.leaf.Kind == "delivered" && ed.format == "edxml" {
				ir.EdXMLStatus = EdXMLStatusReceived(StatusReceived{Recipient: rc, RecipientName: ed.names[rc], Sender: sender,
					Code: ed.code, PromulgationDate: ed.date, DocumentID: ed.docRef, At: s.leaf.At})
			}
			set.Receipts = append(set.Receipts, ir)
			need[s.idx] = s.hash
		}
	}
	idxs := make([]uint64, 0, len(need))
	for i := range need {
		idxs = append(idxs, i)
	}
	sort.Slice(idxs, func(i, j int) bool { return idxs[i] < idxs[j] })
	proofs, err := l.inclusionProofs(ctx, idxs, cp.Size, nil)
	if err != nil {
		return set, err
	}
	for k, i := range idxs {
		set.Proofs[i] = logverify.Proof{LeafIndex: i, TreeSize: cp.Size, LeafHash: need[i], Hashes: proofs[k]}
	}
	return set, nil
}
