package xmlscan

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

// benchDoc is an edXML-like document of about 20 KB, most of it one base64
// text in 76-column lines.
func benchDoc() []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><edXML xmlns="u"><edXML:Header xmlns:edXML="u">`)
	for range 20 {
		b.WriteString(`<edXML:OrganId a="1">000.00.00.C01</edXML:OrganId><edXML:Subject>Hà Nội ủy ban</edXML:Subject>`)
	}
	b.WriteString(`</edXML:Header><edXML:AttachmentText>`)
	b.WriteString(strings.Repeat(strings.Repeat("QUJD", 19)+"\n", 250))
	b.WriteString(`</edXML:AttachmentText></edXML>`)
	return b.Bytes()
}

func BenchmarkScan(b *testing.B) {
	doc := benchDoc()
	b.Run("xmlscan", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			s := NewBytes(doc, Options{})
			for {
				if _, err := s.Next(); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("encoding-xml", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			d := xml.NewDecoder(bytes.NewReader(doc))
			for {
				if _, err := d.RawToken(); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
