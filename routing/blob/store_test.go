package blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"lienthong/routing/blob"
	"lienthong/routing/ledger"
	"lienthong/routing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func newPool(t *testing.T) *pgxpool.Pool {
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
	return pool
}

func put(t *testing.T, pool *pgxpool.Pool, sum []byte, r io.Reader) (int64, error) {
	t.Helper()
	ctx := context.Background()
	var n int64
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		n, err = blob.Put(ctx, tx, sum, r)
		return err
	})
	return n, err
}

func TestLargeObjectRoundTrip(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	s := blob.NewStore(pool)
	for _, size := range []int{0, 1, blob.ChunkSize - 1, blob.ChunkSize, 3*blob.ChunkSize + 17, 5 << 20} {
		data := make([]byte, size)
		rand.Read(data)
		sum := sha256.Sum256(data)
		// a reader that hands out small pieces: Put must not depend on read sizes
		n, err := put(t, pool, sum[:], io.LimitReader(bytes.NewReader(data), int64(size)))
		if err != nil || n != int64(size) {
			t.Fatalf("put %d bytes: n=%d err=%v", size, n, err)
		}
		rc, got, err := s.Open(ctx, sum[:])
		if err != nil || got != int64(size) {
			t.Fatalf("open %d bytes: size=%d err=%v", size, got, err)
		}
		back, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, data) {
			t.Fatalf("%d bytes: read back %d bytes that differ", size, len(back))
		}
	}
}

func TestPutIsContentAddressed(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	data := bytes.Repeat([]byte("lienthong "), 300_000)
	sum := sha256.Sum256(data)
	for range 2 {
		if _, err := put(t, pool, sum[:], bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	var blobs, los int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM blobs), (SELECT count(*) FROM pg_largeobject_metadata)`).
		Scan(&blobs, &los); err != nil {
		t.Fatal(err)
	}
	if blobs != 1 || los != 1 {
		t.Fatalf("same bytes twice: %d blobs, %d large objects; want 1 and 1", blobs, los)
	}
}

func TestPutRefusesWrongDigestAndStoresNothing(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	sum := sha256.Sum256([]byte("other bytes"))
	_, err := put(t, pool, sum[:], bytes.NewReader(bytes.Repeat([]byte("x"), 1<<20)))
	if !errors.Is(err, blob.ErrDigestMismatch) {
		t.Fatalf("err = %v, want ErrDigestMismatch", err)
	}
	var blobs, los int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM blobs), (SELECT count(*) FROM pg_largeobject_metadata)`).
		Scan(&blobs, &los); err != nil {
		t.Fatal(err)
	}
	if blobs != 0 || los != 0 {
		t.Fatalf("after a refused put: %d blobs, %d large objects", blobs, los)
	}
	if _, _, err := blob.NewStore(pool).Open(ctx, sum[:]); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("open of a missing blob: %v", err)
	}
}
