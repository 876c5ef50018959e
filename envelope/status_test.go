package envelope

import (
	"strings"
	"testing"
	"time"
)

// What BuildStatus writes, Parse reads back, Vietnamese text and markup included.
func TestBuildStatusRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 2, 3, 5, 11, 0, time.UTC)
	for _, code := range statusCodes {
		p := StatusPackage{From: Organ{Code: "000.00.00.C02", Name: "Ủy ban <Thử nghiệm> & Số Hai"},
			ResponseFor: ResponseFor{OrganID: "000.00.00.C01", DocumentID: "000.00.00.C01,2026/02/20,9/VPTN-TH", Code: "9/VPTN-TH"},
			Code:        code, Description: "Đã đến — văn thư chưa xử lý", Staff: "Lê Văn Mẫu", At: at}
		raw, err := BuildStatus(p)
		if err != nil {
			t.Fatalf("%s: %v", code, err)
		}
		d, err := Parse(raw, Limits{})
		if err != nil {
			t.Fatalf("%s: Parse: %v\n%s", code, err, raw)
		}
		if d.Format != FormatEdXMLStatus || d.Status.Code != code || d.From.Code != p.From.Code ||
			d.DocumentID != p.ResponseFor.DocumentID || len(d.To) != 1 || d.To[0].Code != "000.00.00.C01" ||
			d.Status.Description != p.Description || d.Status.Timestamp != "2026/03/02 10:05:11" || len(d.Warnings) != 0 {
			t.Errorf("%s: parsed back %+v %+v", code, d, d.Status)
		}
	}
}

func TestBuildStatusRefusesWhatParseWould(t *testing.T) {
	ok := StatusPackage{From: Organ{Code: "000.00.00.C02"}, ResponseFor: ResponseFor{OrganID: "000.00.00.C01", DocumentID: "x"}, Code: "01"}
	cases := []struct {
		name string
		edit func(*StatusPackage)
		code Code
	}{
		{"unknown code", func(p *StatusPackage) { p.Code = "07" }, CodeBadStatus},
		{"no original", func(p *StatusPackage) { p.ResponseFor.DocumentID = "" }, CodeBadStatus},
		{"bad From", func(p *StatusPackage) { p.From.Code = "C 02; DROP" }, CodeBadOrganCode},
		{"no addressee", func(p *StatusPackage) { p.ResponseFor.OrganID = "" }, CodeBadOrganCode},
	}
	for _, tc := range cases {
		p := ok
		tc.edit(&p)
		if _, err := BuildStatus(p); CodeOf(err) != tc.code {
			t.Errorf("%s: err %v, want %s", tc.name, err, tc.code)
		}
	}
}

// FuzzBuildStatus: whatever the fields, BuildStatus either refuses with a
// typed error or writes a package that Parse reads back to the same fields.
func FuzzBuildStatus(f *testing.F) {
	f.Add("000.00.00.C02", "Ủy ban", "000.00.00.C01", "000.00.00.C01,2026/02/20,9/VPTN-TH", "01", "Đã đến", "Lê Văn Mẫu")
	f.Add("C02", "<&>", "000.00.00.C01", "]]>", "13", "\x00", "")
	f.Add("000.00.00.C02", "", "000.00.00.C01", "x", "15", "a\r\nb", "\"'")
	f.Fuzz(func(t *testing.T, from, name, to, docID, code, desc, staff string) {
		p := StatusPackage{From: Organ{Code: from, Name: name}, ResponseFor: ResponseFor{OrganID: to, DocumentID: docID},
			Code: code, Description: desc, Staff: staff, At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		raw, err := BuildStatus(p)
		if err != nil {
			if CodeOf(err) == "" {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		d, err := Parse(raw, Limits{})
		if err != nil {
			// Text that XML cannot carry (control characters, invalid UTF-8) is
			// refused by Parse with a typed error, never accepted wrongly.
			if CodeOf(err) == "" {
				t.Fatalf("untyped parse error %v", err)
			}
			return
		}
		if d.Status.Code != code || d.From.Code != from || d.DocumentID != strings.TrimSpace(docID) || d.To[0].Code != to {
			t.Fatalf("round trip: %+v %+v", d, d.Status)
		}
	})
}
