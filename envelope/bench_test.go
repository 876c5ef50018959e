package envelope

import "testing"

func benchParse(b *testing.B, size int) {
	raw, _ := bigDoc(b, size)
	if _, err := Parse(raw, Limits{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse20KB: an edXML package of about 20 KB (one PDF attachment).
func BenchmarkParse20KB(b *testing.B) { benchParse(b, 20<<10) }

// BenchmarkParse2MB: an edXML package of about 2 MB.
func BenchmarkParse2MB(b *testing.B) { benchParse(b, 2<<20) }

// BenchmarkParseStatus: a status package (no attachment).
func BenchmarkParseStatus(b *testing.B) {
	raw := readFixture(b, "status-05.edxml")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
