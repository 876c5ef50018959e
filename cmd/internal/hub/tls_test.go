package hub

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"lienthong/cmd/internal/devpki"
	"lienthong/routing/ledger"
)

// A client certificate issued by the configured CA authenticates as the organ
// it is bound to; no certificate and no token is 401; a certificate from
// another CA does not get through the handshake.
func TestMutualTLSMapsClientCertificateToOrgan(t *testing.T) {
	pki, err := devpki.Ensure(t.TempDir(), []string{orgA}, map[string]string{orgA: "A"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := devpki.Ensure(t.TempDir(), []string{orgA}, map[string]string{orgA: "impostor"})
	if err != nil {
		t.Fatal(err)
	}
	caCert, _, _ := devpki.Load(pki.CA)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	hubPair, err := tls.LoadX509KeyPair(pki.Hub.Cert, pki.Hub.Key)
	if err != nil {
		t.Fatal(err)
	}
	h := startHub(t, func(c *Config) {
		c.TLS = &tls.Config{Certificates: []tls.Certificate{hubPair}, ClientCAs: pool,
			ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	})
	leaf, _, _ := devpki.Load(pki.Organs[orgA])
	sum := sha256.Sum256(leaf.Raw)
	if err := h.l.AddPrincipal(context.Background(), ledger.Principal{Kind: ledger.RoleOrgan, Organ: orgA}, "", sum[:]); err != nil {
		t.Fatal(err)
	}
	clientFor := func(p *devpki.Pair) *http.Client {
		cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if p != nil {
			kp, err := tls.LoadX509KeyPair(p.Cert, p.Key)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{kp}
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	good, bad := pki.Organs[orgA], other.Organs[orgA]

	resp, err := clientFor(&good).Post(h.api+"/v1/documents", "application/xml",
		bytesReader(newDoc(orgA, []string{orgB}, "700")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit with a client certificate: %d", resp.StatusCode)
	}
	// Bound to A: submitting as B is refused.
	resp, err = clientFor(&good).Post(h.api+"/v1/documents", "application/xml", bytesReader(newDoc(orgB, []string{orgC}, "701")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("certificate of A submitting as B: %d", resp.StatusCode)
	}
	resp, err = clientFor(nil).Get(h.api + "/v1/organs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no certificate, no token: %d", resp.StatusCode)
	}
	if resp, err := clientFor(&bad).Get(h.api + "/v1/organs"); err == nil {
		resp.Body.Close()
		t.Fatalf("a certificate from another CA got through: %d", resp.StatusCode)
	}
}
