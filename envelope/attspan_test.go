package envelope

import (
	"bytes"
	"fmt"
	"testing"
)

// collect runs EachAttachmentOf on doc and copies what it hands over.
func collect(t *testing.T, doc *Document) ([][]byte, error) {
	t.Helper()
	var out [][]byte
	err := EachAttachmentOf(doc, Limits{}, func(a Attachment, data []byte) error {
		out = append(out, bytes.Clone(data))
		return nil
	})
	return out, err
}

// slowly is what reading the document again gives.
func slowly(t *testing.T, doc *Document) [][]byte {
	t.Helper()
	var out [][]byte
	if err := readAttachments(doc, DefaultMaxBytes, 0, func(a Attachment, data []byte) error {
		out = append(out, bytes.Clone(data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEachAttachmentOfReadsParseSpans: after Parse, the attachments are
// decoded from where Parse found them, not by reading the document again —
// a Raw broken outside the attachments afterwards does not matter — and the
// bytes are the ones the tokenizer gives.
func TestEachAttachmentOfReadsParseSpans(t *testing.T) {
	for _, name := range []string{"new-1-recipient-pdf.edxml", "new-2-recipients-zip.edxml", "priority-0.edxml"} {
		t.Run(name, func(t *testing.T) {
			raw := readFixture(t, name)
			for _, variant := range []struct {
				name string
				raw  []byte
			}{
				{"as is", raw},
				{"with a byte-order mark", append([]byte("\xef\xbb\xbf"), raw...)},
			} {
				doc, err := Parse(variant.raw, Limits{})
				if err != nil {
					t.Fatal(err)
				}
				want := slowly(t, doc)
				if len(doc.spans) != len(doc.Attachments) || len(want) == 0 {
					t.Fatalf("%s: %d spans for %d attachments", variant.name, len(doc.spans), len(doc.Attachments))
				}
				// Break the XML before the first attachment: only a re-read sees it.
				doc.Raw = bytes.Clone(doc.Raw)
				i := bytes.Index(doc.Raw, []byte("<edXML:edXMLEnvelope"))
				if i < 0 {
					t.Fatal("fixture changed")
				}
				doc.Raw[i] = '&'
				got, err := collect(t, doc)
				if err != nil {
					t.Fatalf("%s: %v", variant.name, err)
				}
				if len(got) != len(want) {
					t.Fatalf("%s: %d attachments, want %d", variant.name, len(got), len(want))
				}
				for j := range want {
					if !bytes.Equal(got[j], want[j]) {
						t.Errorf("%s: attachment %d differs from the tokenizer's", variant.name, j)
					}
				}
			}
		})
	}
}

// TestEachAttachmentOfFallsBack: attachment text that is not plain (a
// reference, CDATA, a comment), and a Raw whose attachment bytes changed
// after Parse, take the tokenizer's path with its checks.
func TestEachAttachmentOfFallsBack(t *testing.T) {
	raw := readFixture(t, "new-1-recipient-pdf.edxml")
	base, err := Parse(raw, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := slowly(t, base)
	for _, tc := range []struct{ name, old, new string }{
		{"character reference", ">JVBERi0", ">&#74;VBERi0"},
		{"CDATA", ">JVBERi0", "><![CDATA[JVBE]]>Ri0"},
		{"comment", ">JVBERi0", "><!-- x -->JVBERi0"},
		{"whitespace", ">JVBERi0", ">\n  JVBE\r\n Ri0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Replace(raw, []byte(tc.old), []byte(tc.new), 1)
			doc, err := Parse(b, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if plain := tc.name == "whitespace"; (doc.spans != nil) != plain {
				t.Fatalf("spans %v, want spans %v", doc.spans, plain)
			}
			got, err := collect(t, doc)
			if err != nil || len(got) != 1 || !bytes.Equal(got[0], want[0]) {
				t.Fatalf("got %d attachments, %v; want the fixture's", len(got), err)
			}
		})
	}
	t.Run("attachment changed after Parse", func(t *testing.T) {
		doc, err := Parse(raw, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		doc.Raw = bytes.Replace(bytes.Clone(raw), []byte(">JVBERi0"), []byte(">JVBERi1"), 1)
		_, err = collect(t, doc)
		if CodeOf(err) != CodeBadBase64 {
			t.Fatalf("err = %v, want %s from the re-read", err, CodeBadBase64)
		}
	})
	t.Run("no attachment handed over twice", func(t *testing.T) {
		doc, err := Parse(threeAttachments(t, raw), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		all := slowly(t, doc)
		if len(doc.spans) != 3 || len(all) != 3 || string(all[1]) != "hello" || len(all[2]) != 0 {
			t.Fatalf("spans %v, attachments %q", doc.spans, all)
		}
		if got, err := collect(t, doc); err != nil || len(got) != 3 || string(got[1]) != "hello" || len(got[2]) != 0 {
			t.Fatalf("from spans: %q, %v", got, err)
		}
		// A stale second span: the first attachment comes from its span,
		// the others from the re-read, each once.
		doc.spans = append([]attSpan(nil), doc.spans...)
		doc.spans[1] = attSpan{0, 4}
		got, err := collect(t, doc)
		if err != nil || len(got) != 3 || !bytes.Equal(got[0], all[0]) || string(got[1]) != "hello" {
			t.Fatalf("got %q, %v; want the three attachments once", got, err)
		}
	})
}

// threeAttachments adds to the PDF fixture a second attachment ("hello",
// wrapped base64) and a third with no ContentTransferEncoded.
func threeAttachments(t *testing.T, raw []byte) []byte {
	t.Helper()
	ref := "<edXML:Reference><edXML:ContentId>cid:%s</edXML:ContentId><edXML:AttachmentName>%s.txt</edXML:AttachmentName></edXML:Reference>\n"
	b := bytes.Replace(raw, []byte("      </edXML:edXMLManifest>"),
		[]byte(fmt.Sprintf(ref, "202", "202")+fmt.Sprintf(ref, "203", "203")+"      </edXML:edXMLManifest>"), 1)
	b = bytes.Replace(b, []byte("  </AttachmentEncoded>"), []byte(`    <Attachment><ContentId>cid:202</ContentId><ContentTransferEncoded>aGVs
bG8=</ContentTransferEncoded></Attachment>
    <Attachment><ContentId>cid:203</ContentId></Attachment>
  </AttachmentEncoded>`), 1)
	if bytes.Equal(b, raw) {
		t.Fatal("fixture changed")
	}
	return b
}
