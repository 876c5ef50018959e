package envelope

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"lienthong/envelope/xmlscan"
)

// sameAsParse checks that ParseElement on the tree of raw reads what Parse
// reads from raw (Raw aside).
func sameAsParse(t *testing.T, raw []byte, want *Document) {
	t.Helper()
	tree, err := xmlscan.BuildTree(xmlscan.NewBytes(raw, xmlscan.Options{}))
	if err != nil {
		return // Parse is more lenient on a few points (e.g. comments after the root)
	}
	got, err := ParseElement(tree.Root(), Limits{})
	if err != nil {
		t.Fatalf("ParseElement: %v", err)
	}
	w := *want
	w.Raw, w.spans, w.decoded, w.parsed = nil, nil, nil, nil // spans locate attachments in Raw, decoded is what Parse read there
	if !reflect.DeepEqual(got, &w) {
		t.Fatalf("ParseElement differs from Parse:\n%+v\n%+v", got, &w)
	}
	// ParseSigned, reusing what Parse decoded, reads the same.
	signed, err := ParseSigned(tree.Root(), Limits{}, want)
	if err != nil {
		t.Fatalf("ParseSigned: %v", err)
	}
	if !reflect.DeepEqual(signed, got) {
		t.Fatalf("ParseSigned differs from ParseElement:\n%+v\n%+v", signed, got)
	}
}

// TestParseElementMatchesParse: on every fixture (edXML, status, hub
// envelopes with AKN payloads) the tree reading gives the same Document.
func TestParseElementMatchesParse(t *testing.T) {
	var files []string
	for _, pat := range []string{"../testdata/edxml/*.edxml", "../testdata/hub/*.xml"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	n := 0
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Parse(raw, Limits{})
			if err != nil {
				t.Skipf("refused by Parse: %v", err)
			}
			n++
			sameAsParse(t, raw, d)
		})
	}
	if n == 0 {
		t.Fatal("no fixture parsed")
	}
}
