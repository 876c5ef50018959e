package ledger

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRevokePrincipal: a revoked credential stops authenticating at once in
// the process that revoked it and, through the directory notification, in
// another process whose cache would keep it for an hour; re-adding the same
// token does not revive it; the revocation is an admin event naming the
// operator; a refused revocation (unknown, already revoked, the last
// operator) changes nothing.
func TestRevokePrincipal(t *testing.T) {
	l, _ := newLedger(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	other := New(l.Pool(), Config{DirectoryTTL: time.Hour})
	watched := make(chan error, 1)
	go func() { watched <- other.WatchDirectory(ctx) }()
	defer func() { cancel(); <-watched }()

	organ := Principal{Kind: RoleOrgan, Organ: "000.00.00.C01", Name: "văn thư C01"}
	for _, p := range []struct {
		p   Principal
		tok string
	}{{organ, "tok-c01"}, {Principal{Kind: RoleOperator, Name: "ops 1"}, "tok-op1"}, {Principal{Kind: RoleOperator, Name: "ops 2"}, "tok-op2"}} {
		if err := l.AddPrincipal(ctx, p.p, p.tok, nil); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // past the watcher's first invalidation
	byTok := map[string]int64{}
	for _, tok := range []string{"tok-c01", "tok-op1", "tok-op2"} {
		p, err := other.PrincipalByToken(ctx, tok) // cached for an hour in other
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.PrincipalByToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		byTok[tok] = p.ID
	}
	leaves := func() int {
		var n int
		if err := l.Pool().QueryRow(ctx, `SELECT count(*) FROM events WHERE kind = $1 AND state = $2`,
			KindAdmin, AdminPrincipalRevoked).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	got, err := l.RevokePrincipal(ctx, byTok["tok-c01"], "ops 1#2", "lost laptop")
	if err != nil {
		t.Fatal(err)
	}
	if got.RevokedAt == nil || got.RevokedBy != "ops 1#2" || got.Organ != organ.Organ || got.TokenPrefix != hashPrefix(HashToken("tok-c01")) {
		t.Fatalf("revoked: %+v", got)
	}
	if _, err := l.PrincipalByToken(ctx, "tok-c01"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking process: %v, want ErrNotFound", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := other.PrincipalByToken(ctx, "tok-c01"); errors.Is(err, ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("another process still authenticates a revoked token (TTL 1h): no notification")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var actor, reason string
	if err := l.Pool().QueryRow(ctx, `SELECT detail->>'actor', detail->>'reason' FROM events WHERE kind = $1 AND state = $2`,
		KindAdmin, AdminPrincipalRevoked).Scan(&actor, &reason); err != nil || actor != "ops 1#2" || reason != "lost laptop" {
		t.Fatalf("admin event: actor %q reason %q (%v)", actor, reason, err)
	}
	// Re-adding the same token (a directory file loaded again) does not revive it.
	if err := l.AddPrincipal(ctx, organ, "tok-c01", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := l.PrincipalByToken(ctx, "tok-c01"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("re-added revoked token: %v, want ErrNotFound", err)
	}

	// Refusals change nothing.
	if _, err := l.RevokePrincipal(ctx, byTok["tok-op1"], "ops 2#3", ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   int64
		want error
	}{{byTok["tok-c01"], ErrAlreadyRevoked}, {99999, ErrNotFound}, {byTok["tok-op2"], ErrLastOperator}} {
		before := leaves()
		if _, err := l.RevokePrincipal(ctx, c.id, "ops 2#3", ""); !errors.Is(err, c.want) {
			t.Errorf("revoke %d: %v, want %v", c.id, err, c.want)
		}
		if leaves() != before {
			t.Errorf("revoke %d (%v) recorded an event", c.id, c.want)
		}
	}
	if _, err := l.PrincipalByToken(ctx, "tok-op2"); err != nil {
		t.Fatalf("the last operator credential no longer works: %v", err)
	}

	rows, err := l.ListPrincipals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, r := range rows {
		if r.RevokedAt != nil {
			revoked++
		}
		if r.TokenPrefix == "" || len(r.TokenPrefix) != 16 {
			t.Errorf("principal %d: token prefix %q, want 8 bytes of hex", r.ID, r.TokenPrefix)
		}
	}
	if len(rows) != 3 || revoked != 2 {
		t.Fatalf("list: %d rows, %d revoked; want 3 and 2", len(rows), revoked)
	}
}

// Two operators revoking each other's credential at once: one succeeds, the
// other is refused as the last operator, so an operator credential remains.
func TestRevokeOperatorsConcurrently(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	var ids [2]int64
	for i, tok := range []string{"tok-a", "tok-b"} {
		if err := l.AddPrincipal(ctx, Principal{Kind: RoleOperator, Name: tok}, tok, nil); err != nil {
			t.Fatal(err)
		}
		p, err := l.PrincipalByToken(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = p.ID
	}
	for round := 0; round < 5; round++ {
		if round > 0 { // start again with two active operators
			if _, err := l.Pool().Exec(ctx, `UPDATE principals SET revoked_at = NULL, revoked_by = ''`); err != nil {
				t.Fatal(err)
			}
		}
		errs := make(chan error, 2)
		for i := range ids {
			go func() { _, err := l.RevokePrincipal(ctx, ids[i], "x", ""); errs <- err }()
		}
		var ok, last int
		for range ids {
			switch err := <-errs; {
			case err == nil:
				ok++
			case errors.Is(err, ErrLastOperator):
				last++
			default:
				t.Fatal(err)
			}
		}
		var active int
		if err := l.Pool().QueryRow(ctx, `SELECT count(*) FROM principals WHERE kind = 'operator' AND revoked_at IS NULL`).Scan(&active); err != nil {
			t.Fatal(err)
		}
		if ok != 1 || last != 1 || active != 1 {
			t.Fatalf("round %d: %d revoked, %d refused, %d active operators; want 1, 1, 1", round, ok, last, active)
		}
	}
}
