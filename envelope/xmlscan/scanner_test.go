package xmlscan

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// stream renders a token sequence as text, merging adjacent character data
// and dropping empty character data, so that streams of both modes (and of
// encoding/xml) compare equal when they carry the same document.
func stream(s *Scanner) (string, error) {
	var b strings.Builder
	var text []byte
	flush := func() {
		if len(text) > 0 {
			fmt.Fprintf(&b, "T%q\n", text)
			text = text[:0]
		}
	}
	for {
		t, err := s.Next()
		if err == io.EOF {
			flush()
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
		if t.Kind == CharData {
			text = append(text, t.Data...)
			continue
		}
		flush()
		switch t.Kind {
		case StartElement:
			fmt.Fprintf(&b, "S%s:%s", t.Prefix, t.Local)
			for _, a := range t.Attrs {
				fmt.Fprintf(&b, " %s:%s=%q", a.Prefix, a.Local, a.Value)
			}
			b.WriteByte('\n')
		case EndElement:
			fmt.Fprintf(&b, "E%s:%s\n", t.Prefix, t.Local)
		case Comment:
			fmt.Fprintf(&b, "C%q\n", t.Data)
		case ProcInst:
			fmt.Fprintf(&b, "P%s %q\n", t.Target, t.Data)
		}
	}
}

func TestAccept(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"minimal", `<a/>`, "S:a\nE:a\n"},
		{"decl", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><a></a>`, "Pxml \"version=\\\"1.0\\\" encoding=\\\"UTF-8\\\" standalone=\\\"yes\\\"\"\nS:a\nE:a\n"},
		{"decl utf8", `<?xml version='1.0' encoding='utf8'?><a/>`, "Pxml \"version='1.0' encoding='utf8'\"\nS:a\nE:a\n"},
		{"bom", "\xef\xbb\xbf<?xml version=\"1.0\"?><a/>", "Pxml \"version=\\\"1.0\\\"\"\nS:a\nE:a\n"},
		{"prefixes", `<p:a xmlns:p="u" p:x="1" y='2'><p:b/></p:a>`, "Sp:a xmlns:p=\"u\" p:x=\"1\" :y=\"2\"\nSp:b\nEp:b\nEp:a\n"},
		{"entities", `<a x="&lt;&amp;&#65;&#x42;&quot;&apos;&gt;">&lt;&#x10000;&gt;</a>`, "S:a :x=\"<&AB\\\"'>\"\nT\"<\U00010000>\"\nE:a\n"},
		{"eol text", "<a>x\r\ny\rz\n</a>", "S:a\nT\"x\\ny\\nz\\n\"\nE:a\n"},
		{"char ref cr kept", "<a>&#13;&#10;</a>", "S:a\nT\"\\r\\n\"\nE:a\n"},
		{"attr normalised", "<a x=\"1\t2\n3\r\n4\r5&#10;6&#9;\"/>", "S:a :x=\"1 2 3 4 5\\n6\\t\"\nE:a\n"},
		{"cdata", `<a>x<![CDATA[<&>]]]]>y</a>`, "S:a\nT\"x<&>]]y\"\nE:a\n"},
		{"empty cdata", `<a><![CDATA[]]></a>`, "S:a\nE:a\n"},
		{"comments pis around", "<!-- c --><?pi data?>\n<a><!--x--><?q?></a>\n<!--after--><?t x?> \n", "C\" c \"\nPpi \"data\"\nS:a\nCx\"\nPq \"\"\nE:a\nC\"after\"\nPt \"x\"\n"},
		{"space in tags", "<a  x = '1'\n></a >", "S:a :x=\"1\"\nE:a\n"},
		{"unicode names", `<ví dụ="1"><χ/></ví>`, "S:ví :dụ=\"1\"\nS:χ\nE:χ\nE:ví\n"},
		{"gt in text and attr", `<a x=">">]></a>`, "S:a :x=\">\"\nT\"]>\"\nE:a\n"},
		{"brackets then markup then gt", `<a>]]<b/>></a>`, "S:a\nT\"]]\"\nS:b\nE:b\nT\">\"\nE:a\n"},
		{"vietnamese text", `<a>Hà Nội ủy ban</a>`, "S:a\nT\"Hà Nội ủy ban\"\nE:a\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := stream(NewBytes([]byte(tc.in), Options{}))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			// the "Cx" shorthand above keeps the table short
			want := strings.ReplaceAll(tc.want, "Cx\"\n", "C\"x\"\n")
			if got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
			for _, n := range []int{1, 3, 7} {
				rs, err := stream(NewReader(iotest.OneByteReader(strings.NewReader(tc.in)), Options{MaxTextChunk: n, BufferSize: n}))
				if err != nil || rs != got {
					t.Errorf("reader mode (chunk %d): %v\n%s", n, err, rs)
				}
			}
		})
	}
}

func TestRefuse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		is       error // sentinel, or nil for a plain syntax error
	}{
		{"empty", ``, nil},
		{"only space", " \n", nil},
		{"doctype", `<!DOCTYPE a><a/>`, ErrDoctype},
		{"doctype entity", `<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>`, ErrDoctype},
		{"latin1", `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`, ErrNotUTF8},
		{"utf16 decl", `<?xml version="1.0" encoding="UTF-16"?><a/>`, ErrNotUTF8},
		{"bad utf8 text", "<a>\xff</a>", ErrNotUTF8},
		{"bad utf8 attr", "<a x='\xc3'/>", ErrNotUTF8},
		{"bad utf8 name", "<a\xc3/>", ErrNotUTF8},
		{"too deep", strings.Repeat("<a>", 257) + strings.Repeat("</a>", 257), ErrTooDeep},
		{"too many attrs", "<a" + func() string {
			var b strings.Builder
			for i := range 257 {
				fmt.Fprintf(&b, " a%d='1'", i)
			}
			return b.String()
		}() + "/>", ErrTooManyAttrs},
		{"long name", "<" + strings.Repeat("a", 1025) + "/>", ErrNameTooLong},
		{"unknown entity", `<a>&nbsp;</a>`, nil},
		{"bare amp", `<a>a & b</a>`, nil},
		{"bad char ref", `<a>&#0;</a>`, nil},
		{"surrogate ref", `<a>&#xD800;</a>`, nil},
		{"fffe ref", `<a>&#xFFFE;</a>`, nil},
		{"huge ref", `<a>&#x110000;</a>`, nil},
		{"control char", "<a>\x01</a>", nil},
		{"fffe char", "<a>\uFFFE</a>", nil},
		{"control in attr", "<a x='\x02'/>", nil},
		{"mismatched", `<a></b>`, nil},
		{"mismatched prefix", `<p:a></q:a>`, nil},
		{"unclosed", `<a><b></b>`, nil},
		{"duplicate attr", `<a x="1" x="2"/>`, ErrDuplicateAttr},
		{"duplicate prefixed attr", `<a p:x="1" p:x="2"/>`, ErrDuplicateAttr},
		{"lt in attr", `<a x="<"/>`, nil},
		{"unquoted attr", `<a x=1/>`, nil},
		{"no space between attrs", `<a x="1"y="2"/>`, nil},
		{"text after root", `<a/>x`, nil},
		{"second root", `<a/><b/>`, nil},
		{"text before root", `x<a/>`, nil},
		{"cdata outside root", `<![CDATA[x]]><a/>`, nil},
		{"decl not first", ` <?xml version="1.0"?><a/>`, nil},
		{"decl inside", `<a><?xml version="1.0"?></a>`, nil},
		{"decl no version", `<?xml encoding="UTF-8"?><a/>`, nil},
		{"version 1.1", `<?xml version="1.1"?><a/>`, nil},
		{"double dash comment", `<a><!-- a -- b --></a>`, nil},
		{"comment ends dash", `<a><!-- a ---></a>`, nil},
		{"cdata end in text", `<a>]]></a>`, nil},
		{"bad name start", `<1a/>`, nil},
		{"colon first", `<:a/>`, nil},
		{"colon last", `<a:/>`, nil},
		{"two colons", `<a:b:c/>`, nil},
		{"end tag junk", `<a></a x>`, nil},
		{"unterminated comment", `<a><!-- x</a>`, nil},
		{"unterminated cdata", `<a><![CDATA[x</a>`, nil},
		{"unterminated attr", `<a x="1/>`, nil},
		{"pi without space", `<a><?pix?y?></a>`, nil},
		{"pi colon target", `<a><?p:i x?></a>`, nil},
		{"bad markup", `<a><!x></a>`, nil},
		{"self close junk", `<a/ >`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []string{"bytes", "reader"} {
				var s *Scanner
				if mode == "bytes" {
					s = NewBytes([]byte(tc.in), Options{})
				} else {
					s = NewReader(iotest.HalfReader(strings.NewReader(tc.in)), Options{MaxTextChunk: 2, BufferSize: 8})
				}
				_, err := stream(s)
				var se *SyntaxError
				switch {
				case err == nil:
					t.Fatalf("%s mode: accepted", mode)
				case !errors.As(err, &se):
					t.Fatalf("%s mode: %T %v, want *SyntaxError", mode, err, err)
				case tc.is != nil && !errors.Is(err, tc.is):
					t.Fatalf("%s mode: %v, want %v", mode, err, tc.is)
				}
			}
		})
	}
}

func TestOffsetOfError(t *testing.T) {
	_, err := stream(NewBytes([]byte("<a>\n<b></c></a>"), Options{}))
	var se *SyntaxError
	if !errors.As(err, &se) || se.Offset != 7 {
		t.Fatalf("err = %v, want offset 7", err)
	}
}

// TestReaderBoundedChunks: a long text arrives in chunks of at most
// MaxTextChunk bytes, and the buffer stays bounded.
func TestReaderBoundedChunks(t *testing.T) {
	const n = 1 << 20
	in := io.MultiReader(strings.NewReader("<a>"), strings.NewReader(strings.Repeat("QUJD\n", n/5)), strings.NewReader("&amp;</a>"))
	s := NewReader(in, Options{MaxTextChunk: 4096, BufferSize: 8192, MaxTokenBytes: 16384})
	total := 0
	for {
		tok, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if tok.Kind == CharData {
			if len(tok.Data) > 4096 {
				t.Fatalf("chunk of %d bytes", len(tok.Data))
			}
			total += len(tok.Data)
		}
	}
	if total != n/5*5+1 {
		t.Fatalf("text of %d bytes", total)
	}
	if cap(s.buf) > 16384 {
		t.Fatalf("buffer grew to %d", cap(s.buf))
	}
}

func TestReaderTokenTooLarge(t *testing.T) {
	in := "<a x='" + strings.Repeat("v", 100) + "'/>"
	_, err := stream(NewReader(strings.NewReader(in), Options{BufferSize: 16, MaxTokenBytes: 64}))
	if !errors.Is(err, ErrTokenTooLarge) {
		t.Fatalf("err = %v, want ErrTokenTooLarge", err)
	}
}

func TestZeroCopyText(t *testing.T) {
	in := []byte("<a>plain base64 text QUJD</a>")
	s := NewBytes(in, Options{})
	s.Next()
	tok, err := s.Next()
	if err != nil || tok.Kind != CharData {
		t.Fatal(tok, err)
	}
	if &tok.Data[0] != &in[3] {
		t.Error("plain text was copied")
	}
}

// refStream renders encoding/xml's RawToken stream (Strict) in the form of
// stream, masking the documented, intentional differences.
func refStream(in []byte) (string, error) {
	d := xml.NewDecoder(bytes.NewReader(in))
	d.Strict = true
	var b strings.Builder
	var text []byte
	depth := 0
	norm := func(s []byte) []byte {
		s = bytes.ReplaceAll(s, []byte("\r\n"), []byte("\n"))
		return bytes.ReplaceAll(s, []byte("\r"), []byte("\n"))
	}
	flush := func() {
		if len(text) > 0 {
			fmt.Fprintf(&b, "T%q\n", text)
			text = text[:0]
		}
	}
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			flush()
			return b.String(), nil
		}
		if err != nil {
			return "", err
		}
		if cd, ok := tok.(xml.CharData); ok {
			if depth > 0 {
				text = append(text, cd...)
			}
			continue
		}
		flush()
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			fmt.Fprintf(&b, "S%s:%s", tok.Name.Space, tok.Name.Local)
			for _, a := range tok.Attr {
				fmt.Fprintf(&b, " %s:%s=%q", a.Name.Space, a.Name.Local, a.Value)
			}
			b.WriteByte('\n')
		case xml.EndElement:
			depth--
			fmt.Fprintf(&b, "E%s:%s\n", tok.Name.Space, tok.Name.Local)
		case xml.Comment:
			fmt.Fprintf(&b, "C%q\n", norm(tok))
		case xml.ProcInst:
			fmt.Fprintf(&b, "P%s %q\n", tok.Target, norm(tok.Inst))
		case xml.Directive:
			return "", errors.New("directive")
		}
	}
}

// maskAttrs applies attribute-value normalisation to the rendered values of
// both streams: encoding/xml keeps literal whitespace, the scanner turns it
// into spaces, and character references are indistinguishable afterwards.
func maskAttrs(s string) string {
	r := strings.NewReplacer(`\t`, " ", `\n`, " ", `\r`, " ")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "S") {
			lines[i] = r.Replace(l)
		}
	}
	return strings.Join(lines, "\n")
}

var seeds = []string{
	`<a/>`,
	`<?xml version="1.0" encoding="UTF-8"?><a x="1">t<b y='2'>&lt;u&#x41;</b><!--c--><?p q?><![CDATA[<x>]]></a>`,
	"<a x=\"1\t2\r\n\">x\r\ny\rz</a>",
	`<e:edXML xmlns:e="u"><e:Header><e:From>000.00.00.C01</e:From></e:Header><e:AttachmentText>QUJDRA==` + "\n" + `QUJD</e:AttachmentText></e:edXML>`,
	`<a>Hà Nội &amp; ủy ban</a>`,
	`<a><![CDATA[]]]]><![CDATA[>]]></a>`,
	"<a>\n</a>\n<!-- after -->\n",
}

// FuzzDifferential: for every input both the scanner and encoding/xml
// (RawToken, Strict) accept, the token streams are equal modulo the
// documented differences.
func FuzzDifferential(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := stream(NewBytes(in, Options{}))
		if err != nil {
			return
		}
		want, err := refStream(in)
		if err != nil {
			return
		}
		if maskAttrs(got) != maskAttrs(want) {
			t.Fatalf("input %q\nscanner:\n%s\nencoding/xml:\n%s", in, got, want)
		}
	})
}

// FuzzReaderMode: reader mode with tiny buffers and chunks accepts exactly
// what bytes mode accepts, with the same concatenated stream.
func FuzzReaderMode(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s), uint8(1), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk, bufSize uint8) {
		want, werr := stream(NewBytes(in, Options{}))
		s := NewReader(iotest.OneByteReader(bytes.NewReader(in)), Options{MaxTextChunk: int(chunk), BufferSize: int(bufSize)})
		got, gerr := stream(s)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("input %q: bytes mode err %v, reader mode err %v", in, werr, gerr)
		}
		if werr == nil && got != want {
			t.Fatalf("input %q\nbytes:\n%s\nreader:\n%s", in, want, got)
		}
		// Reader mode sees a text run in chunks, so when a run holds more
		// than one problem it may name another one first; a DOCTYPE is
		// always the same verdict.
		if werr != nil && errors.Is(werr, ErrDoctype) != errors.Is(gerr, ErrDoctype) {
			t.Fatalf("input %q: bytes mode err %v, reader mode err %v", in, werr, gerr)
		}
	})
}

func TestKeepSpaceOutsideRoot(t *testing.T) {
	in := "<?xml version=\"1.0\"?>\r\n\n<a> </a>\r\n"
	want := "Pxml \"version=\\\"1.0\\\"\"\nT\"\\n\\n\"\nS:a\nT\" \"\nE:a\nT\"\\n\"\n"
	for _, s := range []*Scanner{
		NewBytes([]byte(in), Options{KeepSpaceOutsideRoot: true}),
		NewReader(iotest.OneByteReader(strings.NewReader(in)), Options{KeepSpaceOutsideRoot: true, MaxTextChunk: 1, BufferSize: 1}),
	} {
		got, err := stream(s)
		if err != nil || got != want {
			t.Errorf("got %v\n%s\nwant\n%s", err, got, want)
		}
	}
}
