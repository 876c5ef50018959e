package ledger

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDirectoryCacheInvalidation(t *testing.T) {
	l0, _ := newLedger(t)
	ctx := context.Background()
	const ttl = 300 * time.Millisecond
	l := New(l0.Pool(), Config{DirectoryTTL: ttl})
	other := New(l0.Pool(), Config{DirectoryTTL: ttl}) // another hubd on the same database
	c02 := Organ{Code: "000.00.00.C02", Name: "B", Channel: ChannelPull, OldCodes: []string{"C02"}, Active: true}

	for _, code := range []string{c02.Code, "C02"} {
		if o, err := l.Organ(ctx, code); err != nil || o.Name != "B" {
			t.Fatalf("%s: %+v %v", code, o, err)
		}
	}
	// A change behind the Ledger's back is seen once the entry expires.
	if _, err := l.Pool().Exec(ctx, `UPDATE organs SET name = 'B2' WHERE code = $1`, c02.Code); err != nil {
		t.Fatal(err)
	}
	if o, _ := l.Organ(ctx, c02.Code); o.Name != "B" {
		t.Fatalf("name %q right after the change: the lookup was not cached", o.Name)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	if o, _ := l.Organ(ctx, c02.Code); o.Name != "B2" {
		t.Fatalf("name %q after the TTL, want B2", o.Name)
	}

	// Deactivated by another process: refused within the TTL.
	_, _ = l.Organ(ctx, "C02") // warm
	off := c02
	off.Active = false
	if err := other.UpsertOrgan(ctx, off); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(ttl + 100*time.Millisecond)
	for {
		_, err1 := l.Organ(ctx, c02.Code)
		_, err2 := l.Organ(ctx, "C02")
		if errors.Is(err1, ErrUnknownOrgan) && errors.Is(err2, ErrUnknownOrgan) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deactivated organ still resolves after the TTL: %v %v", err1, err2)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Changed through this Ledger: seen at once, old codes included.
	if err := l.UpsertOrgan(ctx, c02); err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{c02.Code, "C02"} {
		if o, err := l.Organ(ctx, code); err != nil || !o.Active {
			t.Fatalf("reactivated %s: %+v %v", code, o, err)
		}
	}
	if err := l.UpsertOrgan(ctx, off); err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{c02.Code, "C02"} {
		if _, err := l.Organ(ctx, code); !errors.Is(err, ErrUnknownOrgan) {
			t.Fatalf("deactivated here, %s still resolves: %v", code, err)
		}
	}

	// A cached entry is a copy: a caller cannot change it.
	if err := l.UpsertOrgan(ctx, c02); err != nil {
		t.Fatal(err)
	}
	o, _ := l.Organ(ctx, c02.Code)
	o.OldCodes[0] = "forged"
	if o, _ := l.Organ(ctx, c02.Code); o.OldCodes[0] != "C02" {
		t.Fatalf("cache entry changed through a returned value: %v", o.OldCodes)
	}
}

func TestWatchDirectorySeesOtherProcesses(t *testing.T) {
	l0, _ := newLedger(t)
	ctx, cancel := context.WithCancel(context.Background())
	l := New(l0.Pool(), Config{DirectoryTTL: time.Hour})
	other := New(l0.Pool(), Config{})
	done := make(chan error, 1)
	go func() { done <- l.WatchDirectory(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watch: %v", err)
		}
	}()
	c02 := Organ{Code: "000.00.00.C02", Name: "B", Channel: ChannelPull, Active: true}
	// Warm the cache (retrying until the watcher's first invalidation is past).
	time.Sleep(100 * time.Millisecond)
	if _, err := l.Organ(ctx, c02.Code); err != nil {
		t.Fatal(err)
	}
	c02.Active = false
	if err := other.UpsertOrgan(ctx, c02); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := l.Organ(ctx, c02.Code); errors.Is(err, ErrUnknownOrgan) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an organ deactivated by another process still resolves (TTL 1h): no notification")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPrincipalCache: a credential that authenticated is answered from the
// cache for up to the TTL (a removal behind the Ledger's back is refused at
// most that much later); an unknown credential is never cached; a negative
// TTL turns the cache off.
func TestPrincipalCache(t *testing.T) {
	l0, _ := newLedger(t)
	ctx := context.Background()
	const ttl = 300 * time.Millisecond
	l := New(l0.Pool(), Config{DirectoryTTL: ttl})
	if err := l.UpsertOrgan(ctx, Organ{Code: "000.00.00.C07", Name: "G", Channel: ChannelPull, Active: true}); err != nil {
		t.Fatal(err)
	}
	// Unknown first: not cached, so adding it elsewhere is seen at once.
	if _, err := l.PrincipalByToken(ctx, "tok-7"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	if _, err := l.Pool().Exec(ctx, `INSERT INTO principals (kind, organ, name, token_sha256) VALUES ($1, $2, 'g', $3)`,
		RoleOrgan, "000.00.00.C07", HashToken("tok-7")); err != nil {
		t.Fatal(err)
	}
	p, err := l.PrincipalByToken(ctx, "tok-7")
	if err != nil || p.Organ != "000.00.00.C07" || p.Kind != RoleOrgan {
		t.Fatalf("token: %+v, %v", p, err)
	}
	// Removed behind the Ledger's back: still answered within the TTL, refused after it.
	if _, err := l.Pool().Exec(ctx, `DELETE FROM principals WHERE token_sha256 = $1`, HashToken("tok-7")); err != nil {
		t.Fatal(err)
	}
	if p2, err := l.PrincipalByToken(ctx, "tok-7"); err != nil || p2 != p {
		t.Fatalf("right after the removal: %+v, %v; want the cached principal", p2, err)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	if _, err := l.PrincipalByToken(ctx, "tok-7"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after the TTL: %v, want ErrNotFound", err)
	}
	// No cache: a removal is seen at once.
	nc := New(l0.Pool(), Config{DirectoryTTL: -1})
	if err := nc.AddPrincipal(ctx, Principal{Kind: RoleOrgan, Organ: "000.00.00.C07", Name: "g"}, "tok-8", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.PrincipalByToken(ctx, "tok-8"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Pool().Exec(ctx, `DELETE FROM principals WHERE token_sha256 = $1`, HashToken("tok-8")); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.PrincipalByToken(ctx, "tok-8"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("without a cache: %v, want ErrNotFound", err)
	}
}
