package xmlscan

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"unicode/utf8"
)

// tokens reads every token of src, copied (a token is valid only until the
// next call), with empty Data and Attrs as nil.
func tokens(src interface{ Next() (Token, error) }) ([]Token, error) {
	var out []Token
	for {
		t, err := src.Next()
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return out, err
		}
		t.Data = bytes.Clone(t.Data)
		if len(t.Data) == 0 {
			t.Data = nil
		}
		t.Attrs = slices.Clone(t.Attrs)
		if len(t.Attrs) == 0 {
			t.Attrs = nil
		}
		out = append(out, t)
	}
}

// checkTape: a recording Scanner returns what a plain one does, its tape is
// complete exactly when the input was accepted, and the replay gives the
// very same tokens (twice).
func checkTape(t *testing.T, in []byte) {
	t.Helper()
	want, werr := tokens(NewBytes(in, Options{}))
	tape := NewTape()
	defer tape.Release()
	s := NewBytes(in, Options{})
	s.Record(tape)
	got, gerr := tokens(s)
	if !reflect.DeepEqual(got, want) || (werr == nil) != (gerr == nil) {
		t.Fatalf("input %q: recording changes the scan", in)
	}
	if tape.Complete() != (werr == nil) {
		t.Fatalf("input %q: tape complete %v, scan error %v", in, tape.Complete(), werr)
	}
	// The scanner checks every byte it consumes: a complete tape is of
	// valid UTF-8 (dsig.VerifyTokens relies on it).
	if tape.Complete() && !utf8.Valid(in) {
		t.Fatalf("input %q: accepted, but not valid UTF-8", in)
	}
	if !tape.Of(in) || tape.Of(bytes.Clone(in)) && len(in) > 0 {
		t.Fatalf("input %q: Of is not identity of the input", in)
	}
	for range 2 {
		r, rerr := tokens(tape.Replay())
		if werr != nil {
			if !errors.Is(rerr, ErrIncompleteTape) {
				t.Fatalf("input %q: replay of an incomplete tape: %v", in, rerr)
			}
			return
		}
		if rerr != nil || !reflect.DeepEqual(r, want) {
			t.Fatalf("input %q: replay differs (%v)\nreplay %+v\nscan   %+v", in, rerr, r, want)
		}
	}
}

func TestTapeReplaysTheScan(t *testing.T) {
	for _, s := range seeds {
		checkTape(t, []byte(s))
	}
	for _, pat := range []string{"../../testdata/edxml/*.edxml", "../../testdata/hub/*.xml"} {
		files, _ := filepath.Glob(pat)
		if len(files) == 0 {
			t.Fatalf("no files %s", pat)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			checkTape(t, b)
		}
	}
	checkTape(t, benchDoc())
}

func TestTapeBOMAndBound(t *testing.T) {
	in := []byte("\xef\xbb\xbf<a>x</a>")
	tape := NewTape()
	s := NewBytes(in[3:], Options{})
	s.Record(tape)
	if _, err := tokens(s); err != nil {
		t.Fatal(err)
	}
	if !tape.Of(in) || !tape.Of(in[3:]) || tape.Of(in[1:]) {
		t.Fatal("Of: the input with its byte order mark, or without it, only")
	}
	tape.Release()

	// A document of many elements outgrows MaxTapeBytes: the tape is
	// incomplete, the scan itself unaffected.
	big := append([]byte("<r>"), bytes.Repeat([]byte("<a/>"), MaxTapeBytes/tapeTokenSize)...)
	big = append(big, "</r>"...)
	tape = NewTape()
	defer tape.Release()
	s = NewBytes(big, Options{})
	s.Record(tape)
	if _, err := tokens(s); err != nil {
		t.Fatal(err)
	}
	if tape.Complete() {
		t.Fatal("a tape over MaxTapeBytes is complete")
	}
	if _, err := tokens(tape.Replay()); !errors.Is(err, ErrIncompleteTape) {
		t.Fatalf("replay: %v", err)
	}
	// Reader mode does not record.
	r := NewReader(bytes.NewReader(in), Options{})
	other := NewTape()
	r.Record(other)
	if _, err := tokens(r); err != nil || other.Complete() {
		t.Fatalf("reader mode recorded: %v", err)
	}
}

// FuzzTapeReplay: on any input, the replay of a recorded scan is the scan.
func FuzzTapeReplay(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkTape(t, in) })
}
