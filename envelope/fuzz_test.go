package envelope

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse: Parse never panics; on success Raw is the input, the organ codes
// validate, and parsing again gives the same model.
func FuzzParse(f *testing.F) {
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
		orig := bytes.Clone(raw)
		lim := Limits{MaxBytes: 1 << 20}
		d, err := Parse(raw, lim)
		if !bytes.Equal(raw, orig) {
			t.Fatal("Parse modified its input")
		}
		if err != nil {
			if CodeOf(err) == "" {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		if !bytes.Equal(d.Raw, raw) || (len(raw) > 0 && &d.Raw[0] != &raw[0]) {
			t.Fatal("Raw is not the input")
		}
		if _, err := ValidateOrganCode(d.From.Code); err != nil {
			t.Fatalf("From: %v", err)
		}
		if len(d.To) == 0 {
			t.Fatal("accepted without To")
		}
		for _, o := range d.To {
			if _, err := ValidateOrganCode(o.Code); err != nil {
				t.Fatalf("To: %v", err)
			}
		}
		if d.DocumentID == "" {
			t.Fatal("accepted without DocumentID")
		}
		d2, err := Parse(raw, lim)
		if err != nil {
			t.Fatalf("second parse: %v", err)
		}
		if !reflect.DeepEqual(d, d2) {
			t.Fatalf("second parse differs:\n%+v\n%+v", d, d2)
		}
		sameAsParse(t, raw, d)
	})
}
