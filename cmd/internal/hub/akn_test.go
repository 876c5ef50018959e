package hub

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"lienthong/cmd/internal/signtest"
	"lienthong/envelope/dsig"
	"lienthong/envelope/verify"
	"lienthong/routing/ledger"
)

type aknReportJSON struct {
	Outcome    string `json:"outcome"`
	Code       string `json:"code"`
	Organ      string `json:"organ"`
	Signatures []struct {
		Kind     string `json:"kind"`
		Role     string `json:"role"`
		Location string `json:"location"`
		Verdict  string `json:"verdict"`
		Organ    string `json:"organ"`
		Binding  string `json:"binding"`
		Signer   struct {
			SHA256 string `json:"sha256"`
		} `json:"signer"`
		Algorithms struct {
			Signature     string `json:"signature"`
			SignedContent string `json:"signed_content"`
		} `json:"algorithms"`
	} `json:"signatures"`
}

// A hub envelope signed by organ A carrying an Akoma Ntoso act signed by
// its author (organ B's key, signed by the hub's signer and by xmlsec1) is
// accepted through POST /v1/documents, delivered unchanged, and its
// verification report lists both signatures; the tampered variants are
// refused with their codes and nothing is stored.
func TestSignedAKNPayloadInSignedEnvelopeEndToEnd(t *testing.T) {
	bin := xmlsecBin(t)
	h, p := startTrustHub(t)

	byHub, err := p.SignedHubAKN(orgA, []string{orgB}, 9001, p.Other)
	if err != nil {
		t.Fatal(err)
	}
	xakn, err := p.XmlsecSignAKN(bin, t.TempDir(), 9002, p.Other, dsig.AlgRSASHA256)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signtest.HubAKN(orgA, []string{orgB}, 9002, xakn)
	if err != nil {
		t.Fatal(err)
	}
	byXmlsec, err := p.SignHub(env, p.Signer)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		raw  []byte
	}{{"payload signed by the hub's signer", byHub}, {"payload signed by xmlsec1", byXmlsec}} {
		t.Run(tc.name, func(t *testing.T) {
			var acc struct{ ID string }
			if st := h.call("POST", "/v1/documents", h.tokens[orgA], tc.raw, &acc); st != http.StatusAccepted {
				t.Fatalf("POST: %d", st)
			}
			h.waitStates(acc.ID, h.tokens[orgB], map[string]string{orgB: ledger.StateDelivered})
			var r aknReportJSON
			if st := h.call("GET", "/v1/documents/"+acc.ID+"/verification", h.tokens[orgB], nil, &r); st != 200 {
				t.Fatalf("GET verification: %d", st)
			}
			if r.Outcome != "valid" || r.Organ != orgA || len(r.Signatures) != 2 {
				t.Fatalf("report %+v", r)
			}
			e, pl := r.Signatures[0], r.Signatures[1]
			if e.Kind != "xmldsig" || e.Role != "envelope" || e.Verdict != "valid" || e.Organ != orgA || e.Binding != "cert_fingerprint" ||
				e.Signer.SHA256 != verify.Fingerprint(p.Signer.Cert) || e.Algorithms.SignedContent != "whole_document" {
				t.Errorf("envelope signature %+v", e)
			}
			if pl.Kind != "xmldsig" || pl.Role != "payload" || pl.Verdict != "valid" || pl.Organ != "" || pl.Binding != "" ||
				pl.Signer.SHA256 != verify.Fingerprint(p.Other.Cert) || !strings.Contains(pl.Location, "meta/proprietary") ||
				pl.Algorithms.SignedContent != "embedded_document" {
				t.Errorf("payload signature %+v", pl)
			}
			req, _ := http.NewRequest("GET", h.api+"/v1/documents/"+acc.ID+"/content", nil)
			req.Header.Set("Authorization", "Bearer "+h.tokens[orgB])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(body.Bytes(), tc.raw) {
				t.Fatal("stored bytes differ from the signed bytes")
			}
		})
	}

	docs := h.count("documents")
	cases, err := p.AKNHostile(orgA, []string{orgB}, 9100)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", h.api+"/v1/documents", bytes.NewReader(tc.Raw))
			req.Header.Set("Authorization", "Bearer "+h.tokens[orgA])
			req.Header.Set("Content-Type", "application/xml")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var pr struct {
				Code   string `json:"code"`
				Detail string `json:"detail"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode < 400 || resp.StatusCode >= 500 || pr.Code != tc.Code {
				t.Fatalf("got %d %q (%s), want 4xx %q", resp.StatusCode, pr.Code, pr.Detail, tc.Code)
			}
		})
	}
	if n := h.count("documents"); n != docs {
		t.Fatalf("refusals stored %d documents", n-docs)
	}
}
