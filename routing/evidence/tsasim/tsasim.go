// Package tsasim is an RFC 3161 time-stamping authority simulator for tests
// and `hubd dev`: it speaks the real protocol over HTTP (POST
// application/timestamp-query, answer application/timestamp-reply) and signs
// with a throwaway key made at start. It can be told to hang, to show that
// the hub's traffic never waits for its TSA. It is not a TSA to trust.
package tsasim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitorus/timestamp"
)

// Server is the simulator's http.Handler.
type Server struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey

	mu     sync.Mutex    // guards hang
	hang   chan struct{} // non-nil: requests block until it is closed (or the client gives up)
	served atomic.Int64
	hung   atomic.Int64
}

// New makes a simulator with a fresh self-signed TSA certificate.
func New() (*Server, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:   pkix.Name{CommonName: "Lienthong TSA simulator (TEST ONLY)"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Server{cert: cert, key: key}, nil
}

// Certificate is the TSA's certificate.
func (s *Server) Certificate() *x509.Certificate { return s.cert }

// Hang makes every request block until Release (or the client gives up).
func (s *Server) Hang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hang == nil {
		s.hang = make(chan struct{})
	}
}

// Release ends Hang.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hang != nil {
		close(s.hang)
		s.hang = nil
	}
}

// Served counts granted timestamps; Hung counts requests that were held.
func (s *Server) Served() int64 { return s.served.Load() }

// Hung counts requests that arrived while hanging.
func (s *Server) Hung() int64 { return s.hung.Load() }

// policy is the simulator's TSA policy OID (a private arc, test only).
var policy = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 3161, 1}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/timestamp-query" {
		http.Error(w, "POST application/timestamp-query", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	hang := s.hang
	s.mu.Unlock()
	if hang != nil {
		s.hung.Add(1)
		select {
		case <-hang:
		case <-r.Context().Done():
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, err := timestamp.ParseRequest(body)
	if err != nil {
		reply(w, mustError(timestamp.Rejection, timestamp.BadDataFormat))
		return
	}
	ts := timestamp.Timestamp{HashAlgorithm: req.HashAlgorithm, HashedMessage: req.HashedMessage,
		Time: time.Now().UTC(), Nonce: req.Nonce, Policy: policy, AddTSACertificate: req.Certificates,
		Accuracy: time.Second}
	resp, err := ts.CreateResponseWithOpts(s.cert, s.key, crypto.SHA256)
	if err != nil {
		reply(w, mustError(timestamp.Rejection, timestamp.SystemFailure))
		return
	}
	s.served.Add(1)
	reply(w, resp)
}

func reply(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/timestamp-reply")
	_, _ = w.Write(b)
}

func mustError(st timestamp.Status, fi timestamp.FailureInfo) []byte {
	b, _ := timestamp.CreateErrorResponse(st, fi) // marshalling two integers does not fail
	return b
}
