package envelope

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// streamAttachments reads every attachment of raw through the streaming
// path: ParseReader, then OpenAttachment for those with a plain span and
// one DecodeAttachments pass for the others. plain says which had a span.
func streamAttachments(t testing.TB, raw []byte, lim Limits) (doc *Document, out [][]byte, plain []bool, err error) {
	t.Helper()
	doc, err = ParseReader(bytes.NewReader(raw), int64(len(raw)), lim)
	if err != nil {
		return nil, nil, nil, err
	}
	out = make([][]byte, len(doc.Attachments))
	plain = make([]bool, len(doc.Attachments))
	for i := range doc.Attachments {
		plain[i] = PlainSpan(doc, i)
		r, err := OpenAttachment(doc, i, bytes.NewReader(raw))
		if !plain[i] {
			if err != ErrNoSpan {
				t.Fatalf("attachment %d without a span: OpenAttachment err %v", i, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if out[i], err = io.ReadAll(r); err != nil {
			return doc, nil, nil, err
		}
	}
	err = DecodeAttachments(bytes.NewReader(raw), int64(len(raw)), lim, doc, func(i int, b []byte) error {
		if !plain[i] {
			out[i] = append(out[i], b...)
		}
		return nil
	})
	return doc, out, plain, err
}

// TestOpenAttachmentMatchesParse: over the fixtures and every way of
// writing the base64 (wrapped with LF or CRLF, one line, a byte-order mark;
// CDATA, a reference or a comment inside, which leave no plain span), the
// streaming path gives each attachment exactly as Parse and
// EachAttachmentOf do.
func TestOpenAttachmentMatchesParse(t *testing.T) {
	files, _ := filepath.Glob("../testdata/edxml/*.edxml")
	encodings := []struct {
		name  string
		plain bool
		enc   func(string) string
	}{
		{"as is", true, nil},
		{"CRLF", true, func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }},
		{"CDATA", false, func(s string) string { return "<![CDATA[" + s + "]]>" }},
		{"reference", false, func(s string) string { return fmt.Sprintf("&#%d;", s[0]) + s[1:] }},
		{"comment", false, func(s string) string { return s[:1] + "<!--x-->" + s[1:] }},
	}
	n := 0
	for _, f := range files {
		orig, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range encodings {
			for _, bom := range []bool{false, true} {
				raw := reencode(orig, e.enc)
				if bom && bytes.HasPrefix(raw, []byte("\xef\xbb\xbf")) {
					continue
				}
				if bom {
					raw = append([]byte("\xef\xbb\xbf"), raw...)
				}
				mdoc, want, merr := ReadAttachments(raw, Limits{})
				doc, got, plain, err := streamAttachments(t, raw, Limits{})
				if (merr == nil) != (err == nil) {
					t.Fatalf("%s %s: Parse %v, stream %v", f, e.name, merr, err)
				}
				if merr != nil {
					continue
				}
				if len(got) != len(want) || len(doc.Attachments) != len(mdoc.Attachments) {
					t.Fatalf("%s %s: %d attachments streamed, %d in memory", f, e.name, len(got), len(want))
				}
				for i := range want {
					if !bytes.Equal(got[i], want[i].Data) {
						t.Fatalf("%s %s: attachment %d differs", f, e.name, i)
					}
					if len(want[i].Data) > 0 && plain[i] != e.plain {
						t.Fatalf("%s %s: attachment %d plain span %v, want %v", f, e.name, i, plain[i], e.plain)
					}
					n++
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d attachments compared", n)
	}
}

var cteOpen = regexp.MustCompile(`<([A-Za-z_][\w.-]*:)?ContentTransferEncoded(\s[^>]*)?>`)

// reencode rewrites the text of every ContentTransferEncoded of raw with enc.
func reencode(raw []byte, enc func(string) string) []byte {
	if enc == nil {
		return raw
	}
	var b bytes.Buffer
	for {
		m := cteOpen.FindIndex(raw)
		if m == nil || raw[m[1]-2] == '/' {
			break
		}
		i := m[1]
		j := bytes.Index(raw[i:], []byte("</"))
		if j < 0 {
			break
		}
		b.Write(raw[:i])
		if text := string(raw[i : i+j]); strings.TrimSpace(text) != "" {
			b.WriteString(enc(text))
		}
		raw = raw[i+j:]
	}
	b.Write(raw)
	return b.Bytes()
}

// TestOpenAttachmentChecksTheBody: read from other bytes than the body
// ParseReader read (one base64 character changed, or text that is not
// base64), the attachment ends in bad_base64, not io.EOF; a body whose
// attachments differ fails DecodeAttachments.
func TestOpenAttachmentChecksTheBody(t *testing.T) {
	raw := readFixture(t, "new-1-recipient-pdf.edxml")
	doc, err := ParseReader(bytes.NewReader(raw), int64(len(raw)), Limits{})
	if err != nil || len(doc.Attachments) == 0 || !PlainSpan(doc, 0) {
		t.Fatalf("%v, %d attachments", err, len(doc.Attachments))
	}
	s := doc.bodySpans[0]
	for name, change := range map[string]func(b []byte){
		"another character": func(b []byte) {
			k := s.start + bytes.IndexAny(raw[s.start:s.end], "ABCDEFGH")
			b[k]++
		},
		"not base64": func(b []byte) { b[s.start+4] = '&' },
	} {
		other := bytes.Clone(raw)
		change(other)
		r, err := OpenAttachment(doc, 0, bytes.NewReader(other))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(r); CodeOf(err) != CodeBadBase64 {
			t.Fatalf("%s: read %v, want bad_base64", name, err)
		}
	}
	other := bytes.Clone(raw)
	k := s.start + bytes.IndexAny(raw[s.start:s.end], "ABCDEFGH")
	other[k]++
	if err := DecodeAttachments(bytes.NewReader(other), int64(len(other)), Limits{}, doc, func(int, []byte) error { return nil }); CodeOf(err) != CodeBadBase64 {
		t.Fatalf("DecodeAttachments over another body: %v", err)
	}
	if _, err := OpenAttachment(doc, len(doc.Attachments), bytes.NewReader(raw)); err == nil {
		t.Fatal("attachment out of range opened")
	}
}

// FuzzOpenAttachment: for any document ParseReader accepts, the streaming
// path gives every attachment exactly as Parse does (ReadAttachments), and
// never panics on what ParseReader recorded.
func FuzzOpenAttachment(f *testing.F) {
	files, _ := filepath.Glob("../testdata/edxml/*.edxml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(reencode(b, func(s string) string { return "<![CDATA[" + s + "]]>" }))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		lim := Limits{MaxBytes: 1 << 20}
		_, want, merr := ReadAttachments(raw, lim)
		_, got, _, err := streamAttachments(t, raw, lim)
		if (merr == nil) != (err == nil) {
			t.Fatalf("Parse %v, stream %v", merr, err)
		}
		if err != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%d attachments streamed, %d in memory", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i].Data) {
				t.Fatalf("attachment %d differs", i)
			}
		}
	})
}
