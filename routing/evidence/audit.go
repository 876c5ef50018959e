package evidence

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"lienthong/routing/evidence/logverify"
)

// TamperError names the first leaf whose stored rows no longer match the log.
type TamperError struct {
	LeafIndex uint64
	EventID   int64 // 0 when not known
	Reason    string
}

func (e *TamperError) Error() string {
	if e.EventID == 0 {
		return fmt.Sprintf("evidence: leaf %d: %s", e.LeafIndex, e.Reason)
	}
	return fmt.Sprintf("evidence: leaf %d (event %d): %s", e.LeafIndex, e.EventID, e.Reason)
}

// Report is what a clean audit found.
type Report struct {
	TreeSize           uint64
	Root               []byte
	CheckpointsChecked int
	Latest             *SignedCheckpoint // nil before the first checkpoint; verify its signature with VerifyCheckpoint
	Unsequenced        int64             // events not (yet) in the log: normal for the last second or two
}

// Audit recomputes every leaf from the current events and documents rows,
// checks each stored leaf and leaf hash, that log_runs maps each event to its
// leaf and nothing else, that every accepted document's
// bytes still hash to its digest (unless purged: empty body with a non-zero
// size), rebuilds the whole tree and compares its root with every stored
// checkpoint and the tree head. It returns a *TamperError naming the first
// leaf that no longer matches, or another error if the audit could not run.
// It streams: memory stays O(log n) whatever the log's size.
func Audit(ctx context.Context, pool *pgxpool.Pool) (Report, error) {
	var rep Report
	size, root, err := treeHead(ctx, pool)
	if err != nil {
		return rep, err
	}
	rep.TreeSize, rep.Root = size, root

	type cp struct {
		size uint64
		root []byte
	}
	var cps []cp
	rows, err := pool.Query(ctx, `SELECT size, root, note, created_at FROM log_checkpoints ORDER BY size`)
	if err != nil {
		return rep, fmt.Errorf("evidence: audit: checkpoints: %w", err)
	}
	for rows.Next() {
		var n int64
		var r []byte
		var sc SignedCheckpoint
		if err := rows.Scan(&n, &r, &sc.Note, &sc.CreatedAt); err != nil {
			rows.Close()
			return rep, fmt.Errorf("evidence: audit: checkpoints: %w", err)
		}
		body, err := noteBody(sc.Note)
		if err == nil {
			sc.Checkpoint, err = logverify.ParseCheckpoint(body)
		}
		if err != nil || sc.Size != uint64(n) || !bytes.Equal(sc.Root, r) {
			rows.Close()
			return rep, &TamperError{LeafIndex: uint64(max(n, 1) - 1),
				Reason: fmt.Sprintf("stored checkpoint of size %d does not match its signed note", n)}
		}
		cps = append(cps, cp{uint64(n), r})
		latest := sc
		rep.Latest = &latest
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("evidence: audit: checkpoints: %w", err)
	}
	if len(cps) > 0 && cps[len(cps)-1].size > size {
		return rep, &TamperError{LeafIndex: size, Reason: fmt.Sprintf("checkpoint of size %d is beyond the tree head %d", cps[len(cps)-1].size, size)}
	}

	rows, err = pool.Query(ctx, `SELECT l.leaf_index, l.event_id, l.leaf_hash, l.leaf, e.id IS NOT NULL,
		coalesce(e.document_id::text, ''), coalesce(e.recipient, ''), coalesce(e.kind, ''), coalesce(e.state, ''),
		coalesce(e.detail::text, ''), coalesce(e.at, 'epoch'), d.sha256,
		CASE WHEN d.id IS NULL OR (octet_length(d.body) = 0 AND d.size > 0) THEN true
		     ELSE coalesce(sha256(d.body) = d.sha256, d.body_blob = d.sha256) END
		FROM log_leaves l
		LEFT JOIN events e ON e.id = l.event_id
		LEFT JOIN documents d ON d.id = e.document_id AND e.kind = 'accepted'
		ORDER BY l.leaf_index`)
	if err != nil {
		return rep, fmt.Errorf("evidence: audit: leaves: %w", err)
	}
	defer rows.Close()
	runs, err := newRunCheck(ctx, pool)
	if err != nil {
		return rep, err
	}
	defer runs.close()
	r := rangeFactory.NewEmptyRange(0)
	next := 0 // next checkpoint to compare
	lastGood := uint64(0)
	var i uint64
	for ; rows.Next(); i++ {
		var idx int64
		var stored, storedHash []byte
		var present, bodyOK bool
		var l logverify.Leaf
		var at time.Time
		if err := rows.Scan(&idx, &l.EventID, &storedHash, &stored, &present, &l.DocumentID, &l.Recipient,
			&l.Kind, &l.State, &l.Detail, &at, &l.DocumentSHA256, &bodyOK); err != nil {
			return rep, fmt.Errorf("evidence: audit: leaves: %w", err)
		}
		l.At = at.UTC()
		if len(l.DocumentSHA256) == 0 {
			l.DocumentSHA256 = nil
		}
		bad := func(reason string) error { return &TamperError{LeafIndex: i, EventID: l.EventID, Reason: reason} }
		switch {
		case uint64(idx) != i:
			return rep, &TamperError{LeafIndex: i, Reason: fmt.Sprintf("leaf %d is missing (next stored is %d)", i, idx)}
		case !bytes.Equal(logverify.LeafHash(stored), storedHash):
			return rep, bad("stored leaf hash does not match the stored leaf bytes")
		case !present:
			return rep, bad("the event row is gone")
		}
		fresh := l.Encode()
		if !bytes.Equal(fresh, stored) {
			return rep, bad("the event row no longer matches its leaf: " + leafDiff(stored, l))
		}
		if !bodyOK {
			return rep, bad("the document's bytes no longer match its digest")
		}
		if reason, err := runs.check(i, l.EventID); err != nil {
			return rep, err
		} else if reason != "" {
			return rep, bad(reason)
		}
		if err := r.Append(storedHash, nil); err != nil {
			return rep, fmt.Errorf("evidence: audit: %w", err)
		}
		for next < len(cps) && cps[next].size == i+1 {
			got, err := rootOf(r)
			if err != nil {
				return rep, fmt.Errorf("evidence: audit: %w", err)
			}
			if !bytes.Equal(got, cps[next].root) {
				return rep, &TamperError{LeafIndex: lastGood, Reason: fmt.Sprintf(
					"leaves [%d, %d) no longer hash to the signed root of checkpoint %d: a stored leaf was rewritten",
					lastGood, i+1, i+1)}
			}
			lastGood = i + 1
			rep.CheckpointsChecked++
			next++
		}
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("evidence: audit: leaves: %w", err)
	}
	if i != size {
		return rep, &TamperError{LeafIndex: i, Reason: fmt.Sprintf("the log holds %d leaves, its head says %d", i, size)}
	}
	if reason, err := runs.finish(size); err != nil {
		return rep, err
	} else if reason != "" {
		return rep, &TamperError{LeafIndex: size, Reason: reason}
	}
	if got, err := rootOf(r); err != nil || !bytes.Equal(got, root) {
		return rep, &TamperError{LeafIndex: lastGood, Reason: fmt.Sprintf(
			"leaves [%d, %d) no longer hash to the tree head's root", lastGood, size)}
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events e
		WHERE NOT EXISTS (SELECT 1 FROM log_leaves l WHERE l.event_id = e.id)`).Scan(&rep.Unsequenced); err != nil { // one hash anti-join
		return rep, fmt.Errorf("evidence: audit: unsequenced: %w", err)
	}
	return rep, nil
}

// leafDiff names the fields in which the current row differs from the leaf.
func leafDiff(stored []byte, now logverify.Leaf) string {
	old, err := logverify.DecodeLeaf(stored)
	if err != nil {
		return "stored leaf is malformed"
	}
	var diff []byte
	add := func(name string, differ bool) {
		if differ {
			if len(diff) > 0 {
				diff = append(diff, ", "...)
			}
			diff = append(diff, name...)
		}
	}
	add("document id", old.DocumentID != now.DocumentID)
	add("recipient", old.Recipient != now.Recipient)
	add("kind", old.Kind != now.Kind)
	add("state", old.State != now.State)
	add("detail", old.Detail != now.Detail)
	add("time", !old.At.Equal(now.At))
	add("document digest", !bytes.Equal(old.DocumentSHA256, now.DocumentSHA256))
	if len(diff) == 0 {
		return "encoding differs"
	}
	return string(diff) + " changed"
}

// runCheck walks log_runs in leaf order beside the leaves: the runs must
// tile [0, size) and map each leaf's index to its event id, so that
// log_leaf_index finds every event at its leaf and only there.
type runCheck struct {
	rows               pgx.Rows
	first, last, index int64 // the current run
	have               bool
	end                uint64 // leaf index after the current run
}

func newRunCheck(ctx context.Context, pool *pgxpool.Pool) (*runCheck, error) {
	rows, err := pool.Query(ctx, `SELECT first_event, last_event, first_index FROM log_runs ORDER BY first_index`)
	if err != nil {
		return nil, fmt.Errorf("evidence: audit: runs: %w", err)
	}
	return &runCheck{rows: rows}, nil
}

func (c *runCheck) close() { c.rows.Close() }

// advance moves to the next run; false at the end.
func (c *runCheck) advance() (bool, error) {
	if !c.rows.Next() {
		c.have = false
		if err := c.rows.Err(); err != nil {
			return false, fmt.Errorf("evidence: audit: runs: %w", err)
		}
		return false, nil
	}
	if err := c.rows.Scan(&c.first, &c.last, &c.index); err != nil {
		return false, fmt.Errorf("evidence: audit: runs: %w", err)
	}
	c.have = true
	return true, nil
}

// check returns why leaf i of event id is not where log_runs says, or "".
func (c *runCheck) check(i uint64, id int64) (string, error) {
	if !c.have || i >= c.end {
		ok, err := c.advance()
		if err != nil {
			return "", err
		}
		if !ok {
			return "no run of log_runs covers this leaf", nil
		}
		if uint64(c.index) != i {
			return fmt.Sprintf("the next run of log_runs starts at leaf %d", c.index), nil
		}
		c.end = i + uint64(c.last-c.first) + 1
	}
	if want := c.first + int64(i-uint64(c.index)); want != id {
		return fmt.Sprintf("log_runs maps this leaf to event %d", want), nil
	}
	return "", nil
}

// finish returns why log_runs goes beyond a log of size leaves, or "".
func (c *runCheck) finish(size uint64) (string, error) {
	if c.have && c.end > size {
		return fmt.Sprintf("a run of log_runs covers leaves up to %d, beyond the tree head %d", c.end, size), nil
	}
	ok, err := c.advance()
	if err != nil || !ok {
		return "", err
	}
	return fmt.Sprintf("a run of log_runs starts at leaf %d, beyond the tree head %d", c.index, size), nil
}
