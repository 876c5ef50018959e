package pgtest_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"lienthong/routing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestDatabasesAreFreshAndSeparate(t *testing.T) {
	ctx := context.Background()
	var urls []string
	for range 2 {
		url := pgtest.NewDatabase(t)
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer conn.Close(ctx)
		var tables int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Errorf("fresh database has %d tables", tables)
		}
		// Same table name in both: they must not collide.
		if _, err := conn.Exec(ctx, "CREATE TABLE docs (id text PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
		urls = append(urls, url)
	}
	if urls[0] == urls[1] {
		t.Errorf("two NewDatabase calls returned the same URL %s", urls[0])
	}
}

func TestDatabaseIsDroppedAfterTest(t *testing.T) {
	var url string
	t.Run("owner", func(t *testing.T) {
		url = pgtest.NewDatabase(t)
		// An open session must not keep the database from being dropped.
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
	})
	conn, err := pgx.Connect(context.Background(), url)
	if err == nil {
		conn.Close(context.Background())
		t.Fatalf("database %s still exists after its test ended", url)
	}
}
