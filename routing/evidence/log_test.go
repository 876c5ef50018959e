package evidence

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"lienthong/routing/evidence/logverify"
)

// TestProofsForEveryIndexAndSize grows the log one leaf at a time, keeping
// each root, then checks the inclusion proof of every (index, size) pair and
// the consistency proof of every (from, to) pair.
func TestProofsForEveryIndexAndSize(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	doc := e.accept(t, "A", "<a/>")
	e.drain(t)
	const n = 40
	roots := map[uint64][]byte{}
	for size := uint64(1); size <= n; size++ {
		if size > 1 {
			e.addEvents(t, doc, 1)
			e.drain(t)
		}
		got, root, err := treeHead(ctx, e.pool)
		if err != nil || got != size {
			t.Fatalf("size %d (%v), want %d", got, err, size)
		}
		roots[size] = root
	}
	for size := uint64(1); size <= n; size++ {
		for index := range size {
			leaf, err := e.log.Leaf(ctx, index)
			if err != nil {
				t.Fatal(err)
			}
			p, err := e.log.InclusionProof(ctx, index, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(leaf.Data, index, size, p, roots[size]); err != nil {
				t.Fatalf("inclusion %d in %d: %v", index, size, err)
			}
		}
		for from := uint64(1); from <= size; from++ {
			p, err := e.log.ConsistencyProof(ctx, from, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(from, size, p, roots[from], roots[size]); err != nil {
				t.Fatalf("consistency %d → %d: %v", from, size, err)
			}
		}
	}
}

// TestConsistencyAcrossThousandEvents: two checkpoints taken 1,000 events
// apart are consistent; a forged old checkpoint is not; every leaf's
// inclusion proof verifies against the signed checkpoint.
func TestConsistencyAcrossThousandEvents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, vkey := e.checkpointer(t)
	doc := e.accept(t, "A", "<a/>")
	if _, err := e.led.Route(ctx, []string{doc}, e.led.Organ); err != nil {
		t.Fatal(err)
	}
	e.addEvents(t, doc, 5)
	e.drain(t)
	old := e.sign(t, c)
	e.addEvents(t, doc, 1000)
	e.drain(t)
	cur := e.sign(t, c)

	oldCP, err := VerifyCheckpoint(old.Note, vkey)
	if err != nil {
		t.Fatal(err)
	}
	curCP, err := VerifyCheckpoint(cur.Note, vkey)
	if err != nil {
		t.Fatal(err)
	}
	if oldCP.Size != 7 || curCP.Size != 1007 || oldCP.Origin != origin || !curCP.Time.After(oldCP.Time) {
		t.Fatalf("checkpoints %+v, %+v", oldCP, curCP)
	}
	p, err := e.log.ConsistencyProof(ctx, oldCP.Size, curCP.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyConsistency(oldCP.Size, curCP.Size, p, oldCP.Root, curCP.Root); err != nil {
		t.Fatalf("genuine checkpoints: %v", err)
	}
	for _, tc := range []struct {
		name string
		size uint64
		root func() []byte
	}{
		{"altered root", oldCP.Size, func() []byte { r := append([]byte(nil), oldCP.Root...); r[0] ^= 1; return r }},
		{"size one larger", oldCP.Size + 1, func() []byte { return oldCP.Root }},
		{"size one smaller", oldCP.Size - 1, func() []byte { return oldCP.Root }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := e.log.ConsistencyProof(ctx, tc.size, curCP.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(tc.size, curCP.Size, p, tc.root(), curCP.Root); !errors.Is(err, logverify.ErrInvalid) {
				t.Fatalf("forged old checkpoint verified: %v", err)
			}
		})
	}
	// A forged note: same body, another key; or an edited body.
	forger, _, _ := GenerateKey(origin)
	fc, err := NewCheckpointer(e.pool, CheckpointerConfig{SignerKey: forger})
	if err != nil {
		t.Fatal(err)
	}
	_ = fc
	edited := strings.Replace(old.Note, "\n7\n", "\n8\n", 1)
	if _, err := VerifyCheckpoint(edited, vkey); err == nil {
		t.Fatal("an edited checkpoint verified")
	}
	_, otherV, _ := GenerateKey(origin)
	if _, err := VerifyCheckpoint(old.Note, otherV); err == nil {
		t.Fatal("a checkpoint verified under another key of the same name")
	}

	for i := range curCP.Size {
		leaf, err := e.log.Leaf(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.log.InclusionProof(ctx, i, curCP.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(leaf.Data, i, curCP.Size, p, curCP.Root); err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
	}
	if rep, err := Audit(ctx, e.pool); err != nil || rep.CheckpointsChecked != 2 || rep.TreeSize != 1007 {
		t.Fatalf("audit: %+v %v", rep, err)
	}
}

func TestCheckpointerSignsAtMostOncePerInterval(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, vkey := e.checkpointer(t)
	steps := []struct {
		name    string
		grow    int
		advance time.Duration
		want    bool
	}{
		{"empty log", 0, time.Minute, false},
		{"first leaves", 3, 0, true},
		{"nothing new", 0, 0, false},
		{"grew, too soon", 2, 0, false},
		{"grew, still too soon", 0, 999 * time.Millisecond, false},
		{"interval over", 0, time.Millisecond, true},
		{"nothing new after a long time", 0, time.Hour, false},
		{"grew after a long time", 1, 0, true},
	}
	doc := ""
	for _, s := range steps {
		if s.grow > 0 {
			if doc == "" {
				doc = e.accept(t, "A", "<a/>")
				s.grow--
			}
			e.addEvents(t, doc, s.grow)
			e.drain(t)
		}
		e.clk.add(s.advance)
		got, err := c.SignIfDue(ctx)
		if err != nil || got != s.want {
			t.Fatalf("%s: signed %v (%v), want %v", s.name, got, err, s.want)
		}
	}
	if n := count(t, e.pool, `SELECT count(*) FROM log_checkpoints`); n != 3 {
		t.Fatalf("%d checkpoints, want 3", n)
	}
	sc, err := e.log.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := VerifyCheckpoint(sc.Note, vkey); err != nil || cp.Size != 6 {
		t.Fatalf("latest checkpoint %+v: %v", cp, err)
	}

	// Run, on the real clock, under continuous growth: consecutive
	// checkpoints are at least Interval apart.
	skey, _, _ := GenerateKey(origin)
	live, err := NewCheckpointer(e.pool, CheckpointerConfig{SignerKey: skey, Interval: 100 * time.Millisecond,
		LockRetry: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- live.Run(rctx) }()
	before := count(t, e.pool, `SELECT count(*) FROM log_checkpoints`)
	beforeSize := count(t, e.pool, `SELECT max(size) FROM log_checkpoints`)
	for end := time.Now().Add(700 * time.Millisecond); time.Now().Before(end); {
		e.addEvents(t, doc, 1)
		e.drain(t)
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	signed := count(t, e.pool, `SELECT count(*) FROM log_checkpoints`) - before
	if signed < 2 || signed > 8 {
		t.Fatalf("Run signed %d checkpoints in 700ms at a 100ms interval", signed)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM (SELECT created_at - lag(created_at) OVER (ORDER BY size) AS d
		FROM log_checkpoints WHERE size > $1) x WHERE d < interval '100 milliseconds'`, beforeSize); n != 0 {
		t.Fatalf("%d checkpoints less than an interval after the previous one", n)
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	srv := echo.New()
	e.log.Routes(srv.Group("/v1"))
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	if rec := get("/v1/log/checkpoint"); rec.Code != http.StatusNotFound {
		t.Fatalf("checkpoint of an empty log: %d", rec.Code)
	}
	c, vkey := e.checkpointer(t)
	doc := e.accept(t, "A", "<a/>")
	e.addEvents(t, doc, 9)
	e.drain(t)
	e.sign(t, c)

	rec := get("/v1/log/checkpoint")
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("checkpoint: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	cp, err := VerifyCheckpoint(rec.Body.String(), vkey)
	if err != nil || cp.Size != 10 {
		t.Fatalf("served checkpoint %+v: %v", cp, err)
	}

	rec = get("/v1/log/leaves/3")
	var leaf LeafJSON
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &leaf) != nil || leaf.Index != 3 {
		t.Fatalf("leaf: %d %s", rec.Code, rec.Body)
	}
	rec = get("/v1/log/proof/inclusion?index=3&size=10")
	var inc InclusionJSON
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &inc) != nil {
		t.Fatalf("inclusion: %d %s", rec.Code, rec.Body)
	}
	if err := VerifyInclusion(leaf.Leaf, 3, 10, inc.Hashes, cp.Root); err != nil {
		t.Fatalf("served inclusion proof: %v", err)
	}
	e.addEvents(t, doc, 5)
	e.drain(t)
	_, root15, _ := treeHead(ctx, e.pool)
	rec = get("/v1/log/proof/consistency?from=10&to=15")
	var cons ConsistencyJSON
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &cons) != nil {
		t.Fatalf("consistency: %d %s", rec.Code, rec.Body)
	}
	if err := VerifyConsistency(10, 15, cons.Hashes, cp.Root, root15); err != nil {
		t.Fatalf("served consistency proof: %v", err)
	}

	for _, tc := range []struct {
		path string
		want int
	}{
		{"/v1/log/leaves/14", http.StatusOK},
		{"/v1/log/leaves/15", http.StatusNotFound},
		{"/v1/log/leaves/-1", http.StatusBadRequest},
		{"/v1/log/leaves/abc", http.StatusBadRequest},
		{"/v1/log/leaves/99999999999999999999", http.StatusBadRequest},
		{"/v1/log/proof/inclusion?index=3", http.StatusBadRequest},
		{"/v1/log/proof/inclusion?size=3", http.StatusBadRequest},
		{"/v1/log/proof/inclusion?index=3&size=3", http.StatusBadRequest},
		{"/v1/log/proof/inclusion?index=x&size=3", http.StatusBadRequest},
		{"/v1/log/proof/inclusion?index=3&size=16", http.StatusNotFound},
		{"/v1/log/proof/inclusion?index=0&size=1", http.StatusOK},
		{"/v1/log/proof/consistency?from=5", http.StatusBadRequest},
		{"/v1/log/proof/consistency?from=6&to=5", http.StatusBadRequest},
		{"/v1/log/proof/consistency?from=5&to=16", http.StatusNotFound},
		{"/v1/log/proof/consistency?from=0&to=15", http.StatusOK},
		{"/v1/log/proof/consistency?from=15&to=15", http.StatusOK},
	} {
		if rec := get(tc.path); rec.Code != tc.want {
			t.Errorf("GET %s: %d %s, want %d", tc.path, rec.Code, strings.TrimSpace(rec.Body.String()), tc.want)
		}
	}
}
