package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"lienthong/cmd/internal/signtest"
	"lienthong/envelope/verify"
)

// hubctl verify gives the hub's verdicts on a hub envelope with a signed
// Akoma Ntoso payload: both signatures reported, each tampered variant
// refused with its code; hubctl sign signs such an envelope keeping the
// payload's signature.
func TestVerifySignedAKNPayload(t *testing.T) {
	f := newFixture(t)
	p := f.p

	good, err := p.SignedHubAKN(orgA, []string{orgB}, 700, p.Other)
	if err != nil {
		t.Fatal(err)
	}
	// The same envelope, signed by `hubctl sign` instead.
	akn, err := p.SignAKN(signtest.AKNDoc(701, ""), p.Other)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signtest.HubAKN(orgA, []string{orgB}, 701, akn)
	if err != nil {
		t.Fatal(err)
	}
	in := f.write(t, "akn-in.xml", env)
	var out, errOut bytes.Buffer
	if err := cmdSign([]string{"--key", f.write(t, "rsa-key.pem", p.Signer.KeyPEM()), "--cert", f.write(t, "rsa.pem", p.Signer.CertPEM()),
		"--chain", f.write(t, "inter.pem", p.Inter.CertPEM()), in}, &out, &errOut); err != nil {
		t.Fatalf("hubctl sign: %v %s", err, errOut.String())
	}

	for name, raw := range map[string][]byte{"hub signer": good, "hubctl sign": out.Bytes()} {
		t.Run(name, func(t *testing.T) {
			code, rep, msg := verifyFile(t, append(f.commonArgs, f.write(t, "akn.xml", raw))...)
			if code != 0 || rep.Outcome != verify.OutcomeValid || len(rep.Signatures) != 2 {
				t.Fatalf("exit %d, report %+v: %s", code, rep, msg)
			}
			e, pl := rep.Signatures[0], rep.Signatures[1]
			if e.Role != "envelope" || e.Organ != orgA || pl.Role != "payload" || pl.Verdict != verify.OutcomeValid ||
				pl.Signer == nil || pl.Signer.SHA256 != verify.Fingerprint(p.Other.Cert) || pl.Organ != "" {
				t.Fatalf("signatures %+v", rep.Signatures)
			}
			if !strings.Contains(msg, "payload: "+p.Other.Cert.Subject.String()) {
				t.Errorf("message %q", msg)
			}
		})
	}

	cases, err := p.AKNHostile(orgA, []string{orgB}, 800)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			file := f.write(t, fmt.Sprintf("akn-case%d.xml", i), tc.Raw)
			code, rep, msg := verifyFile(t, append(f.commonArgs, file)...)
			if code != 1 || rep.Outcome != verify.OutcomeInvalid || rep.Code != tc.Code || !strings.Contains(msg, "INVALID ["+tc.Code+"]") {
				t.Fatalf("exit %d, report %s/%s, want 1 invalid/%s: %s", code, rep.Outcome, rep.Code, tc.Code, msg)
			}
		})
	}
}
