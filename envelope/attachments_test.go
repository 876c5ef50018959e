package envelope

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestReadAttachments(t *testing.T) {
	for _, name := range []string{"new-1-recipient-pdf.edxml", "new-2-recipients-zip.edxml", "priority-0.edxml"} {
		t.Run(name, func(t *testing.T) {
			raw := readFixture(t, name)
			doc, atts, err := ReadAttachments(raw, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if len(atts) != len(doc.Attachments) || len(atts) == 0 {
				t.Fatalf("%d attachments decoded, Parse saw %d", len(atts), len(doc.Attachments))
			}
			again, err := AttachmentsOf(doc, Limits{})
			if err != nil || len(again) != len(atts) {
				t.Fatalf("AttachmentsOf: %v, %d attachments", err, len(again))
			}
			for i, a := range atts {
				if !bytes.Equal(again[i].Data, a.Data) {
					t.Errorf("attachment %s: AttachmentsOf and ReadAttachments disagree", a.ContentID)
				}
				// Parse hashes while streaming; the decoded bytes must agree.
				sum := sha256.Sum256(a.Data)
				if hex.EncodeToString(sum[:]) != doc.Attachments[i].SHA256 || int64(len(a.Data)) != a.Size {
					t.Errorf("attachment %s: decoded bytes do not match Parse's size and SHA-256", a.ContentID)
				}
			}
		})
	}
}

func TestEachAttachmentRefusals(t *testing.T) {
	raw := readFixture(t, "new-1-recipient-pdf.edxml")
	stop := errors.New("stop")
	for _, tc := range []struct {
		name string
		raw  []byte
		lim  Limits
		fn   func(Attachment, []byte) error
		code Code
		err  error
	}{
		{"a package Parse refuses", readFixture(t, "reject-bad-base64.edxml"), Limits{}, nil, CodeBadBase64, nil},
		{"attachment over the size limit", raw, Limits{MaxAttachmentBytes: 16}, nil, CodeTooLarge, nil},
		{"callback error", raw, Limits{}, func(Attachment, []byte) error { return stop }, "", stop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn := tc.fn
			if fn == nil {
				fn = func(Attachment, []byte) error { t.Fatal("callback called"); return nil }
			}
			_, err := EachAttachment(tc.raw, tc.lim, fn)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if CodeOf(err) != tc.code {
				t.Fatalf("err = %v, want code %s", err, tc.code)
			}
		})
	}
}

func FuzzEachAttachment(f *testing.F) {
	for _, n := range []string{"new-1-recipient-pdf.edxml", "new-2-recipients-zip.edxml"} {
		f.Add(readFixture(f, n))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		doc, err := EachAttachment(raw, Limits{MaxBytes: 1 << 20}, func(a Attachment, data []byte) error {
			sum := sha256.Sum256(data)
			if hex.EncodeToString(sum[:]) != a.SHA256 {
				t.Fatalf("attachment %s: decoded bytes disagree with Parse", a.ContentID)
			}
			return nil
		})
		if err == nil && doc == nil {
			t.Fatal("nil document without error")
		}
		if err == nil {
			// Decoding from Parse's spans and re-reading the document agree.
			var fast, slow [][]byte
			if err := EachAttachmentOf(doc, Limits{MaxBytes: 1 << 20}, func(_ Attachment, data []byte) error {
				fast = append(fast, bytes.Clone(data))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := readAttachments(doc, 1<<20, 0, func(_ Attachment, data []byte) error {
				slow = append(slow, bytes.Clone(data))
				return nil
			}); err != nil {
				t.Fatalf("re-read: %v", err)
			}
			if len(fast) != len(slow) {
				t.Fatalf("%d attachments from spans, %d from the re-read", len(fast), len(slow))
			}
			for i := range fast {
				if !bytes.Equal(fast[i], slow[i]) {
					t.Fatalf("attachment %d differs", i)
				}
			}
		}
		if err != nil && CodeOf(err) == "" && !strings.Contains(err.Error(), "envelope") {
			t.Fatalf("untyped error %v", err)
		}
	})
}

// BenchmarkAttachmentsOf: decoding the attachment of a parsed 2 MB edXML
// package (the PDF fixture padded with base64 lines).
func BenchmarkAttachmentsOf(b *testing.B) {
	raw := readFixture(b, "new-1-recipient-pdf.edxml")
	j := bytes.Index(raw, []byte("ContentTransferEncoded"))
	i := j + bytes.IndexByte(raw[j:], '>') + 1
	var buf bytes.Buffer
	buf.Write(raw[:i])
	buf.Write(bytes.Repeat(append(bytes.Repeat([]byte("A"), 76), '\n'), 2<<20/77))
	buf.Write(raw[i:])
	doc, err := Parse(buf.Bytes(), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AttachmentsOf(doc, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// Base64 text holding a character reference takes the tokenizer's path;
// the decoded bytes are the same.
func TestEachAttachmentCharacterReference(t *testing.T) {
	raw := readFixture(t, "new-1-recipient-pdf.edxml")
	_, want, err := ReadAttachments(raw, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	withRef := bytes.Replace(raw, []byte(">JVBERi0"), []byte(">&#74;VBERi0"), 1)
	if bytes.Equal(withRef, raw) {
		t.Fatal("fixture changed: no base64 PDF")
	}
	_, got, err := ReadAttachments(withRef, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !bytes.Equal(got[0].Data, want[0].Data) {
		t.Fatal("decoded bytes differ with a character reference")
	}
}
