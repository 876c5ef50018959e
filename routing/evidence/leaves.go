package evidence

import (
	"bytes"
	"time"

	"lienthong/routing/evidence/logverify"
)

// leafColumns selects, for a log_leaves row l joined to its event (leafFrom),
// what leafRow scans: the stored leaf hash, the stored leaf bytes (rows
// written before migration 0005 only) and the event row the leaf commits to.
const leafColumns = `coalesce(l.leaf_index, -1), coalesce(l.event_id, 0), l.leaf_hash, l.leaf, e.id IS NOT NULL,
	coalesce(e.document_id::text, ''), coalesce(e.recipient, ''), coalesce(e.kind, ''), coalesce(e.state, ''),
	coalesce(e.detail::text, ''), coalesce(e.at, 'epoch'), d.sha256`

// leafFrom joins each leaf to its event and, for an accepted event, its
// document's digest.
const leafFrom = ` FROM log_leaves l LEFT JOIN events e ON e.id = l.event_id
	LEFT JOIN documents d ON d.id = e.document_id AND e.kind = 'accepted'`

// leafRow is one row of leafColumns.
type leafRow struct {
	index   int64
	hash    []byte
	stored  []byte // nil since migration 0005
	present bool   // the event row exists
	event   logverify.Leaf
	at      time.Time
}

// dest is what rows.Scan fills, in leafColumns order, followed by extra.
func (r *leafRow) dest(extra ...any) []any {
	return append([]any{&r.index, &r.event.EventID, &r.hash, &r.stored, &r.present, &r.event.DocumentID,
		&r.event.Recipient, &r.event.Kind, &r.event.State, &r.event.Detail, &r.at, &r.event.DocumentSHA256}, extra...)
}

// current is the leaf the event row encodes now.
func (r *leafRow) current() logverify.Leaf {
	l := r.event
	l.At = r.at.UTC()
	if len(l.DocumentSHA256) == 0 {
		l.DocumentSHA256 = nil
	}
	return l
}

// resolve returns the canonical bytes of the leaf and the leaf they decode
// to: the stored bytes of a row written before migration 0005, otherwise the
// bytes rebuilt from the event row. Either way they must hash to the stored
// leaf hash, which the tree and every signed checkpoint commit to; if they
// do not, a row was changed and resolve returns a *TamperError.
func (r *leafRow) resolve() ([]byte, logverify.Leaf, error) {
	bad := func(reason string) error {
		return &TamperError{LeafIndex: uint64(r.index), EventID: r.event.EventID, Reason: reason}
	}
	if r.stored != nil {
		if !bytes.Equal(logverify.LeafHash(r.stored), r.hash) {
			return nil, logverify.Leaf{}, bad("stored leaf hash does not match the stored leaf bytes")
		}
		l, err := logverify.DecodeLeaf(r.stored)
		if err != nil {
			return nil, logverify.Leaf{}, bad("stored leaf is malformed: " + err.Error())
		}
		return r.stored, l, nil
	}
	if !r.present {
		return nil, logverify.Leaf{}, bad("the event row is gone")
	}
	l := r.current()
	b := l.Encode()
	if !bytes.Equal(logverify.LeafHash(b), r.hash) {
		return nil, logverify.Leaf{}, bad("the event row no longer matches its leaf hash")
	}
	return b, l, nil
}
