package axis_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"lienthong/adapters/axis"
	"lienthong/envelope"
)

var when = time.Date(2026, 3, 2, 3, 4, 5, 0, time.UTC) // 10:04:05 in Vietnam

// What the hub builds parses back, with the hub's own parser, to the model it was built from.
func TestBuildStatusParses(t *testing.T) {
	for _, code := range axis.StatusCodes {
		t.Run(code, func(t *testing.T) {
			raw, err := axis.BuildStatus(axis.StatusPackage{
				From:        envelope.Organ{Code: organNA, Name: "Văn phòng Quốc hội <thử> & co"},
				ResponseFor: envelope.ResponseFor{OrganID: organG22, Code: "7/BTN", PromulgationDate: "2026/03/01", DocumentID: organG22 + ",2026/03/01,7/BTN"},
				Department:  "Văn thư", Staff: "Lienthong", Code: code, Description: "Đã đến", Time: when,
			})
			if err != nil {
				t.Fatal(err)
			}
			d, err := envelope.Parse(raw, envelope.Limits{})
			if err != nil {
				t.Fatalf("%v\n%s", err, raw)
			}
			if d.Format != envelope.FormatEdXMLStatus || d.Status.Code != code || d.From.Code != organNA ||
				len(d.To) != 1 || d.To[0].Code != organG22 || d.DocumentID != organG22+",2026/03/01,7/BTN" ||
				d.Status.Timestamp != "2026/03/02 10:04:05" || d.From.Name != "Văn phòng Quốc hội <thử> & co" {
				t.Fatalf("parsed %+v status %+v", d, d.Status)
			}
		})
	}
}

func TestBuildStatusRefuses(t *testing.T) {
	ok := axis.StatusPackage{From: envelope.Organ{Code: organNA},
		ResponseFor: envelope.ResponseFor{OrganID: organG22, DocumentID: "x"}, Code: "01"}
	for _, test := range []struct {
		name  string
		tweak func(*axis.StatusPackage)
	}{
		{"unknown code", func(p *axis.StatusPackage) { p.Code = "07" }},
		{"code without leading zero", func(p *axis.StatusPackage) { p.Code = "1" }},
		{"no From", func(p *axis.StatusPackage) { p.From.Code = "" }},
		{"no addressee", func(p *axis.StatusPackage) { p.ResponseFor.OrganID = "" }},
		{"no original", func(p *axis.StatusPackage) { p.ResponseFor.DocumentID = "" }},
	} {
		t.Run(test.name, func(t *testing.T) {
			p := ok
			test.tweak(&p)
			if _, err := axis.BuildStatus(p); err == nil {
				t.Fatal("built")
			}
		})
	}
}

// The wrapper carries the original bytes unchanged as its only attachment.
func TestWrapDocument(t *testing.T) {
	orig := []byte("<?xml version=\"1.0\"?><Envelope xmlns=\"urn:lienthong:envelope:1\"><Signature>…</Signature></Envelope>\n")
	raw, err := axis.WrapDocument(axis.Wrapper{From: envelope.Organ{Code: organNA, Name: "VPQH"},
		To: envelope.Organ{Code: organG22}, DocumentID: organNA + ",2026/03/02,5/VPQH", Subject: "V/v <thử>",
		Hop: "lt.quochoi", Time: when, Original: orig, Name: "doc.xml"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := envelope.Parse(raw, envelope.Limits{})
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	sum := sha256.Sum256(orig)
	if d.Format != envelope.FormatEdXML || len(d.Attachments) != 1 || d.Attachments[0].SHA256 != hex.EncodeToString(sum[:]) ||
		d.Attachments[0].Size != int64(len(orig)) || d.Subject != "V/v <thử>" || d.To[0].Code != organG22 {
		t.Fatalf("parsed %+v", d)
	}
	if !bytes.Contains(raw, []byte("<edXML:OrganId>lt.quochoi</edXML:OrganId>")) || strings.Count(string(raw), "<edXML:TraceHeader>") != 2 {
		t.Fatal("the wrapper lacks the hub's TraceHeader hop")
	}
	if _, err := axis.WrapDocument(axis.Wrapper{From: envelope.Organ{Code: organNA}}); err == nil {
		t.Fatal("wrapped without To and original")
	}
}

// FuzzBuildStatus: whatever free text goes into a status the hub builds, the
// hub's parser reads the same fields back (escaping is right, nothing leaks
// into the structure).
func FuzzBuildStatus(f *testing.F) {
	f.Add("Văn phòng Quốc hội", "Đã đến", "Văn thư", "7/BTN", "01")
	f.Add("</edXML:OrganName><edXML:OrganId>x</edXML:OrganId>", "]]><!--", "&amp;", "<", "13")
	f.Fuzz(func(t *testing.T, name, desc, staff, code, status string) {
		valid := func(s string) bool {
			return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
				return r < 0x20 && r != '\t' && r != '\n' || r == 0xFFFE || r == 0xFFFF || r == '\r' || (r >= 0xD800 && r <= 0xDFFF)
			})
		}
		if !valid(name) || !valid(desc) || !valid(staff) || !valid(code) {
			t.Skip()
		}
		raw, err := axis.BuildStatus(axis.StatusPackage{From: envelope.Organ{Code: organNA, Name: name},
			ResponseFor: envelope.ResponseFor{OrganID: organG22, Code: code, DocumentID: organG22 + ",2026/03/01,7/BTN"},
			Staff:       staff, Code: status, Description: desc, Time: when})
		if err != nil {
			return // an unknown status code
		}
		d, err := envelope.Parse(raw, envelope.Limits{})
		if err != nil {
			t.Fatalf("%v\n%s", err, raw)
		}
		if d.Status.Code != status || d.From.Code != organNA || d.To[0].Code != organG22 ||
			strings.TrimSpace(d.From.Name) != strings.TrimSpace(name) || strings.TrimSpace(d.Status.Description) != strings.TrimSpace(desc) {
			t.Fatalf("round trip: %+v %+v", d, d.Status)
		}
	})
}
