package envelope

import (
	"bytes"
	"reflect"
	"testing"

	"lienthong/envelope/xmlscan"
)

// parseTree is ParseElement's and ParseSigned's input for raw.
func parseTree(t *testing.T, raw []byte, lim Limits, ref *Document) (*Document, error) {
	t.Helper()
	tree, err := xmlscan.BuildTree(xmlscan.NewBytes(raw, xmlscan.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if ref == nil {
		return ParseElement(tree.Root(), lim)
	}
	return ParseSigned(tree.Root(), lim, ref)
}

// marked is a Document Parse returned for raw whose remembered decoding of
// each attachment says SHA-256 "marked": a Document ParseSigned read with it
// shows which attachments it took from Parse instead of decoding them.
func marked(t *testing.T, raw []byte) *Document {
	t.Helper()
	doc, err := Parse(raw, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if doc.decoded == nil || len(doc.decoded.atts) == 0 {
		t.Fatal("Parse kept no decoding")
	}
	for i := range doc.decoded.atts {
		doc.decoded.atts[i].sum = "marked"
	}
	return doc
}

// TestParseSignedReusesParse: an attachment whose text in the signed tree
// is the received text is taken from Parse, not decoded again.
func TestParseSignedReusesParse(t *testing.T) {
	raw := threeAttachments(t, readFixture(t, "new-1-recipient-pdf.edxml"))
	doc, err := parseTree(t, raw, Limits{}, marked(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	// The first two have text (the second wrapped over two lines); the
	// third has no ContentTransferEncoded, so nothing to reuse.
	if doc.Attachments[0].SHA256 != "marked" || doc.Attachments[1].SHA256 != "marked" || doc.Attachments[2].SHA256 != emptySHA256 {
		t.Fatalf("attachments %+v: want the first two from Parse", doc.Attachments)
	}
	// The same characters in several pieces of the tree (around a comment,
	// in CDATA) are the same text: they decode to the same bytes.
	for _, split := range []string{">JVBE<!-- x -->Ri0", "><![CDATA[JVBE]]>Ri0"} {
		b := bytes.Replace(raw, []byte(">JVBERi0"), []byte(split), 1)
		doc, err := parseTree(t, b, Limits{}, marked(t, raw))
		if err != nil || doc.Attachments[0].SHA256 != "marked" {
			t.Fatalf("%s: %+v, %v; want it from Parse", split, doc, err)
		}
	}
}

// TestParseSignedDecodesOtherText: any difference between the signed
// tree's attachment text and the received one (a changed, missing or extra
// character, other whitespace, text split by a comment) makes ParseSigned
// decode the tree's text, and read what ParseElement reads.
func TestParseSignedDecodesOtherText(t *testing.T) {
	raw := readFixture(t, "new-1-recipient-pdf.edxml")
	ref := marked(t, raw)
	for _, tc := range []struct{ name, old, new string }{
		{"changed character", ">JVBERi0", ">JVBERi1"},
		{"longer", ">JVBERi0", ">QUFBJVBERi0"},
		{"shorter", ">JVBERi0", ">Ri0"},
		{"whitespace", ">JVBERi0", ">\n  JVBE\r\n Ri0"},
		{"truncated", "</edXML:ContentTransferEncoded>", "QUFB</edXML:ContentTransferEncoded>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Replace(raw, []byte(tc.old), []byte(tc.new), 1)
			if bytes.Equal(b, raw) {
				t.Fatal("fixture changed")
			}
			want, werr := parseTree(t, b, Limits{}, nil)
			got, gerr := parseTree(t, b, Limits{}, ref)
			if CodeOf(werr) != CodeOf(gerr) || !reflect.DeepEqual(got, want) {
				t.Fatalf("ParseSigned: %+v, %v; ParseElement: %+v, %v", got, gerr, want, werr)
			}
			if got != nil && got.Attachments[0].SHA256 == "marked" {
				t.Fatal("the received decoding was taken for other text")
			}
		})
	}
}

// TestParseSignedKeepsItsLimit: a decoded size Parse accepted under its
// limits but over ParseSigned's is refused as ParseElement refuses it.
func TestParseSignedKeepsItsLimit(t *testing.T) {
	raw := readFixture(t, "new-1-recipient-pdf.edxml")
	ref, err := Parse(raw, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	lim := Limits{MaxAttachmentBytes: ref.Attachments[0].Size - 1}
	_, werr := parseTree(t, raw, lim, nil)
	_, gerr := parseTree(t, raw, lim, ref)
	if CodeOf(werr) != CodeTooLarge || CodeOf(gerr) != CodeTooLarge {
		t.Fatalf("ParseElement: %v; ParseSigned: %v; want %s", werr, gerr, CodeTooLarge)
	}
}

// TestAttachmentsOfUsesParsed: after Parse, AttachmentsOf hands out the
// content Parse decoded (the same bytes as a re-read, no copy); once Raw is
// replaced, it reads the new Raw again with its checks.
func TestAttachmentsOfUsesParsed(t *testing.T) {
	raw := threeAttachments(t, readFixture(t, "new-1-recipient-pdf.edxml"))
	doc, err := Parse(raw, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := slowly(t, doc)
	got, err := AttachmentsOf(doc, Limits{})
	if err != nil || len(got) != len(want) {
		t.Fatalf("%d attachments, %v; want %d", len(got), err, len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].Data, want[i]) {
			t.Errorf("attachment %d differs from the re-read", i)
		}
	}
	if &got[0].Data[0] != &doc.decoded.atts[0].data[0] || cap(got[0].Data) != len(got[0].Data) {
		t.Error("attachment 0 is not the content Parse kept (or can be appended to in place)")
	}
	doc.Raw = bytes.Replace(bytes.Clone(raw), []byte(">JVBERi0"), []byte(">JVBERi1"), 1)
	if _, err := AttachmentsOf(doc, Limits{}); CodeOf(err) != CodeBadBase64 {
		t.Fatalf("Raw replaced: err = %v, want %s", err, CodeBadBase64)
	}
}

// TestParseKeepsSmallAttachmentsOnly: Parse keeps decoded content up to
// keepDecodedMax in all; larger content is decoded again when asked for.
func TestParseKeepsSmallAttachmentsOnly(t *testing.T) {
	raw := readFixture(t, "new-1-recipient-pdf.edxml")
	i := bytes.Index(raw, []byte(">JVBERi0")) + 1
	big := append(append(bytes.Clone(raw[:i]), bytes.Repeat([]byte("AAAA"), keepDecodedMax/3+1)...), raw[i:]...)
	doc, err := Parse(big, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if doc.decoded == nil || doc.decoded.atts[0].kept || doc.decoded.atts[0].data != nil {
		t.Fatalf("a %d-byte attachment was kept", doc.Attachments[0].Size)
	}
	got, err := AttachmentsOf(doc, Limits{})
	if err != nil || int64(len(got[0].Data)) != doc.Attachments[0].Size {
		t.Fatalf("AttachmentsOf: %d bytes, %v", len(got[0].Data), err)
	}
}
