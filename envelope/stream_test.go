package envelope

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"testing/iotest"
)

// parseBoth runs Parse and ParseReader (through a reader that hands out one
// byte at a time, so every token boundary is a read boundary) on raw.
func parseBoth(raw []byte, lim Limits) (mem, str *Document, memErr, strErr error) {
	mem, memErr = Parse(raw, lim)
	str, strErr = ParseReader(iotest.OneByteReader(bytes.NewReader(raw)), int64(len(raw)), lim)
	return
}

// sameVerdict compares what the two paths found; Raw is nil on the stream path.
func sameVerdict(t *testing.T, name string, mem, str *Document, memErr, strErr error) {
	t.Helper()
	if (memErr == nil) != (strErr == nil) {
		t.Fatalf("%s: Parse err %v, ParseReader err %v", name, memErr, strErr)
	}
	if memErr != nil {
		if CodeOf(memErr) != CodeOf(strErr) {
			t.Fatalf("%s: codes differ: Parse %s (%v), ParseReader %s (%v)", name, CodeOf(memErr), memErr, CodeOf(strErr), strErr)
		}
		return
	}
	m := *mem
	m.Raw, m.spans, m.decoded, m.parsed = nil, nil, nil, nil // spans locate attachments in Raw, decoded is what Parse read there
	s := *str
	s.bodySpans = nil // and bodySpans in the body read
	if !reflect.DeepEqual(&m, &s) {
		t.Fatalf("%s: models differ:\nParse:       %+v\nParseReader: %+v", name, &m, str)
	}
}

func TestParseReaderMatchesParseOnTheFixtures(t *testing.T) {
	files, _ := filepath.Glob("../testdata/edxml/*.edxml")
	hub, _ := filepath.Glob("../testdata/hub/*.xml")
	files = append(files, hub...)
	if len(files) < 20 {
		t.Fatalf("only %d fixtures", len(files))
	}
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		mem, str, me, se := parseBoth(raw, Limits{})
		sameVerdict(t, filepath.Base(p), mem, str, me, se)
	}
}

func TestParseReaderRefusesOversizedBeforeReading(t *testing.T) {
	_, err := ParseReader(iotest.ErrReader(os.ErrClosed), 2<<20, Limits{MaxBytes: 1 << 20})
	if CodeOf(err) != CodeTooLarge {
		t.Fatalf("err = %v, want too_large", err)
	}
}

// FuzzParseReader: the streaming parser gives the verdict (code) and the
// model of Parse, on any input.
func FuzzParseReader(f *testing.F) {
	for _, pat := range []string{"../testdata/edxml/*.edxml", "../testdata/hub/*.xml"} {
		files, _ := filepath.Glob(pat)
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		mem, str, me, se := parseBoth(raw, Limits{MaxBytes: 1 << 20})
		sameVerdict(t, "fuzz", mem, str, me, se)
	})
}

// TestParsePathsAgreeOnByteOrderMarks: one BOM in front of the document is
// allowed on both paths; a second one (U+FEFF as character data before the
// root) is not well-formed XML, and both paths must refuse it the same way.
func TestParsePathsAgreeOnByteOrderMarks(t *testing.T) {
	const bom = "\xef\xbb\xbf"
	raw, err := os.ReadFile("../testdata/edxml/new-1-recipient-pdf.edxml")
	if err != nil {
		t.Fatal(err)
	}
	raw = bytes.TrimPrefix(raw, []byte(bom))
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"none", raw, true},
		{"one", append([]byte(bom), raw...), true},
		{"two", append([]byte(bom+bom), raw...), false},
		{"after the declaration", bytes.Replace(raw, []byte("?>"), []byte("?>"+bom), 1), false},
	} {
		mem, str, me, se := parseBoth(tc.in, Limits{})
		if (me == nil) != tc.ok {
			t.Errorf("%s: Parse err %v, want ok=%v", tc.name, me, tc.ok)
		}
		sameVerdict(t, tc.name, mem, str, me, se)
	}
}
