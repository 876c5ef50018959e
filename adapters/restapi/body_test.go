package restapi

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// TestReadBody: readBody reads what io.ReadAll of the limited body reads,
// whatever the declared length says, and sizes its buffer from it.
func TestReadBody(t *testing.T) {
	body := bytes.Repeat([]byte("edXML "), 4000) // 24,000 bytes
	for _, tc := range []struct {
		name            string
		declared, limit int64
		want            int
	}{
		{"declared exactly", int64(len(body)), 1 << 20, len(body)},
		{"not declared", -1, 1 << 20, len(body)},
		{"declared too short", 10, 1 << 20, len(body)},
		{"declared too long", 1 << 30, 1 << 20, len(body)},
		{"over the limit", int64(len(body)), 1001, 1001},
		{"declared zero", 0, 1 << 20, len(body)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readBody(iotest.HalfReader(bytes.NewReader(body)), tc.declared, tc.limit)
			if err != nil || !bytes.Equal(got, body[:tc.want]) {
				t.Fatalf("got %d bytes, %v; want %d", len(got), err, tc.want)
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		if got, err := readBody(bytes.NewReader(nil), 0, 1<<20); err != nil || len(got) != 0 {
			t.Fatalf("got %d bytes, %v", len(got), err)
		}
	})
	t.Run("one allocation for the declared size", func(t *testing.T) {
		allocs := testing.AllocsPerRun(20, func() {
			if _, err := readBody(bytes.NewReader(body), int64(len(body)), 1<<20); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 2 { // the buffer (and the LimitedReader)
			t.Fatalf("%v allocations per body", allocs)
		}
	})
	t.Run("read error", func(t *testing.T) {
		boom := errors.New("boom")
		if _, err := readBody(io.MultiReader(bytes.NewReader(body[:100]), iotest.ErrReader(boom)), -1, 1<<20); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want %v", err, boom)
		}
	})
}
