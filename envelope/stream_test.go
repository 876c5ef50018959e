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
	m.Raw = nil
	if !reflect.DeepEqual(&m, str) {
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

// FuzzParseReader: the streaming parser gives the verdict and model of Parse.
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
		if me != nil || se != nil {
			// The tokenizers word their refusals differently; both must refuse
			// what either one refuses as not XML, and agree on accepted input.
			if (me == nil) != (se == nil) && !knownTokenizerDifference(raw) {
				t.Fatalf("Parse err %v, ParseReader err %v", me, se)
			}
			return
		}
		sameVerdict(t, "fuzz", mem, str, me, se)
	})
}

// knownTokenizerDifference marks inputs where xmlscan and encoding/xml
// intentionally differ (envelope/xmlscan doc: attribute-value and
// end-of-line normalisation, "xml" PI targets, long references).
func knownTokenizerDifference(raw []byte) bool {
	return bytes.ContainsAny(raw, "\r\t") || bytes.Contains(raw, []byte("<?")) || bytes.Contains(raw, []byte("&#"))
}
