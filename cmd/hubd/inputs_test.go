package main

import (
	"log/slog"
	"strings"
	"testing"
)

// The directory file's hashes: empty means "not given"; anything else must
// be exactly a SHA-256 in hex.
func TestHexBytes(t *testing.T) {
	good := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in      string
		wantLen int
		wantErr bool
	}{
		{"", 0, false},
		{good, 32, false},
		{strings.ToUpper(good), 32, false},
		{good[:62], 0, true},       // 31 bytes
		{good + "ab", 0, true},     // 33 bytes
		{"zz" + good[2:], 0, true}, // not hex
		{good[:63], 0, true},       // odd length
	} {
		b, err := hexBytes(tc.in)
		if (err != nil) != tc.wantErr || len(b) != tc.wantLen {
			t.Errorf("hexBytes(%q) = %d bytes, %v; want %d bytes, error %v", tc.in, len(b), err, tc.wantLen, tc.wantErr)
		}
	}
}

// pprof is served on loopback only: profiles show the inside of the process.
func TestPprofListenLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		wantErr bool
	}{
		{"0.0.0.0:6061", true},
		{":6061", true},
		{"10.0.0.1:6061", true},
		{"localhost:6061", true}, // a name could resolve anywhere: an IP is required
		{"not an address", true},
		{"127.0.0.1:0", false},
		{"[::1]:0", false},
	} {
		t.Setenv("LT_PPROF_LISTEN", tc.addr)
		if err := startPprof(discardLogger()); (err != nil) != tc.wantErr {
			t.Errorf("LT_PPROF_LISTEN=%q: %v, want error %v", tc.addr, err, tc.wantErr)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
