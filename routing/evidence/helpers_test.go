package evidence

import (
	"context"
	"crypto/sha256"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"lienthong/routing/ledger"
	"lienthong/routing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	sender    = "000.00.00.C01"
	recipient = "000.00.00.C02"
	origin    = "lienthong.test/log"
)

// env is one fresh database with the ledger and evidence schemas.
type env struct {
	pool *pgxpool.Pool
	led  *ledger.Ledger
	clk  *clock
	seq  *Sequencer
	log  *Log
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, func(ctx context.Context, e *env) {
		for range 2 { // idempotent
			if err := Migrate(ctx, e.pool); err != nil {
				t.Fatalf("evidence migrate: %v", err)
			}
		}
	})
}

// newEnvWith is newEnv with another way to apply the evidence schema.
func newEnvWith(t testing.TB, migrate func(context.Context, *env)) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	pool, err := ledger.Connect(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := ledger.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	migrate(ctx, &env{pool: pool})
	clk := newClock()
	led := ledger.New(pool, ledger.Config{Now: clk.now})
	for _, o := range []ledger.Organ{{Code: sender, Name: "A", Channel: "push", Endpoint: "http://x"},
		{Code: recipient, Name: "B", Channel: "pull"}} {
		o.Active = true
		if err := led.UpsertOrgan(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	seq, err := NewSequencer(pool, SequencerConfig{Now: clk.now, Settle: time.Second, GapTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &env{pool: pool, led: led, clk: clk, seq: seq, log: NewLog(pool)}
}

// accept records a document through the real ledger and returns its id.
func (e *env) accept(t testing.TB, ref, body string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	a, err := e.led.Accept(context.Background(), ledger.NewDocument{Sender: sender, DocRef: ref, Format: "edxml",
		Recipients: []string{recipient}, Raw: []byte(body), SHA256: sum[:]})
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// addEvents inserts n events of kind "note" on doc directly, in one statement.
func (e *env) addEvents(t testing.TB, doc string, n int) {
	t.Helper()
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO events (document_id, recipient, kind, state, detail, at)
		SELECT $1, $3, 'note', '', jsonb_build_object('n', g), $4 FROM generate_series(1, $2) g`,
		doc, n, recipient, e.clk.now()); err != nil {
		t.Fatal(err)
	}
}

// drain runs the sequencer until it has nothing more to do.
func (e *env) drain(t testing.TB) int {
	t.Helper()
	total := 0
	for {
		n, err := e.seq.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

func (e *env) checkpointer(t testing.TB) (*Checkpointer, string) {
	t.Helper()
	skey, vkey, err := GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCheckpointer(e.pool, CheckpointerConfig{SignerKey: skey, Interval: time.Second, Now: e.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return c, vkey
}

// sign makes a checkpoint of the current tree now, moving the clock on.
func (e *env) sign(t testing.TB, c *Checkpointer) SignedCheckpoint {
	t.Helper()
	e.clk.add(time.Minute)
	ok, err := c.SignIfDue(context.Background())
	if err != nil || !ok {
		t.Fatalf("SignIfDue: %v %v", ok, err)
	}
	sc, err := e.log.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
