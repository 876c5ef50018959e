package trust_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lienthong/envelope/testpki"
	"lienthong/envelope/trust"
)

// TestOpenSSLOCSPResponder: the checker against an independent OCSP
// responder, `openssl ocsp -index … -port`, which answers from a CA
// database: one leaf valid, one revoked.
func TestOpenSSLOCSPResponder(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl not installed (.ci/run installs it)") // CI installs every oracle: missing is a failure
		}
		t.Skip("openssl not installed (.ci/run installs it)")
	}
	p := pki(t)
	// A free port for the responder (it binds its own socket).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	l.Close()
	url := "http://" + addr
	issue := func(name string) *testpki.Cert {
		c, err := p.Issue(p.Intermediate, testpki.LeafOptions{Name: name, OCSPServer: []string{url}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good, revoked := issue("TEST openssl-ocsp good"), issue("TEST openssl-ocsp revoked")

	dir := t.TempDir()
	line := func(status string, c *testpki.Cert, revokedAt string) string {
		return fmt.Sprintf("%s\t%s\t%s\t%X\tunknown\t/O=Lienthong TEST/CN=%s\n", status, c.Cert.NotAfter.UTC().Format("060102150405Z"),
			revokedAt, c.Cert.SerialNumber, c.Cert.Subject.CommonName)
	}
	index := line("V", good, "") + line("R", revoked, time.Now().Add(-time.Hour).UTC().Format("060102150405Z")+",keyCompromise")
	files := map[string][]byte{"index.txt": []byte(index), "ca.pem": p.Intermediate.CertPEM(), "ca.key": p.Intermediate.KeyPEM()}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "ocsp", "-index", filepath.Join(dir, "index.txt"), "-CA", filepath.Join(dir, "ca.pem"),
		"-rsigner", filepath.Join(dir, "ca.pem"), "-rkey", filepath.Join(dir, "ca.key"), "-port", port, "-ndays", "1")
	// It says when it listens; a probe connection would wedge it (it serves
	// one connection at a time and waits for the request line).
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var stderr strings.Builder
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "waiting for OCSP client connections") {
				close(ready)
				break
			}
		}
		_, _ = io.Copy(io.Discard, errPipe)
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("openssl ocsp did not start")
	}

	chk, err := trust.NewChecker(trust.RevocationConfig{Mode: trust.HardFail, LeafOnly: true, NoCDP: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	res, err := chk.CheckRevocationEvidence(ctx, []*x509.Certificate{good.Cert, p.Intermediate.Cert, p.Root.Cert}, now)
	if err != nil || res.Status != trust.StatusGood || res.Evidence[0].Method != trust.MethodOCSP || res.Evidence[0].NextUpdate.IsZero() {
		t.Fatalf("good leaf: %v %+v ", err, res)
	}
	if err := trust.RecheckRevocation([]*x509.Certificate{good.Cert, p.Intermediate.Cert, p.Root.Cert}, res, now); err != nil {
		t.Fatalf("recheck of openssl's response: %v", err)
	}
	_, err = chk.CheckRevocationEvidence(ctx, []*x509.Certificate{revoked.Cert, p.Intermediate.Cert, p.Root.Cert}, now)
	if !errors.Is(err, trust.ErrRevoked) {
		t.Fatalf("revoked leaf: %v ", err)
	}
}
