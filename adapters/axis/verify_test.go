package axis_test

import (
	"errors"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"lienthong/adapters/axis"
)

func lookup(id string) (string, bool) {
	if id == "sys.a" {
		return "secret-a", true
	}
	return "", false
}

// canonical re-keys h as net/http does on receipt.
func canonical(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		out[ck] = append(out[ck], v...)
	}
	return out
}

func signed(t *testing.T, systemID, secret string, params map[string]string, at time.Time) http.Header {
	t.Helper()
	h, err := axis.SignHeaders(systemID, secret, "application/json", params, at)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestVerifyHeaders(t *testing.T) {
	now := testTime
	params := map[string]string{"docId": "doc-1", "status": "done"}
	for _, test := range []struct {
		name   string
		header func(t *testing.T) http.Header
		want   error
	}{
		{"valid, SDK spelling", func(t *testing.T) http.Header { return signed(t, "sys.a", "secret-a", params, now) }, nil},
		{"valid, canonicalised by net/http", func(t *testing.T) http.Header {
			return canonical(signed(t, "sys.a", "secret-a", params, now.Add(time.Millisecond)))
		}, nil},
		{"valid, 4 minutes behind", func(t *testing.T) http.Header {
			return signed(t, "sys.a", "secret-a", params, now.Add(-4*time.Minute))
		}, nil},
		{"wrong secret", func(t *testing.T) http.Header { return signed(t, "sys.a", "wrong", params, now) }, axis.ErrBadSignature},
		{"unknown system", func(t *testing.T) http.Header { return signed(t, "sys.x", "secret-a", params, now) }, axis.ErrUnknownSystem},
		{"stale", func(t *testing.T) http.Header {
			return signed(t, "sys.a", "secret-a", params, now.Add(-6*time.Minute))
		}, axis.ErrStaleTimestamp},
		{"from the future", func(t *testing.T) http.Header {
			return signed(t, "sys.a", "secret-a", params, now.Add(6*time.Minute))
		}, axis.ErrStaleTimestamp},
		{"tampered value under a valid signature", func(t *testing.T) http.Header {
			h := canonical(signed(t, "sys.a", "secret-a", params, now.Add(2*time.Millisecond)))
			h.Set("XroadVnpt-docId", "doc-2")
			return h
		}, axis.ErrBadSignature},
		{"swapped systemid header", func(t *testing.T) http.Header {
			h := signed(t, "sys.a", "secret-a", params, now.Add(3*time.Millisecond))
			h["XroadVnpt-systemid"] = []string{"sys.b"}
			return h
		}, axis.ErrBadSignature},
		{"unsigned extra parameter", func(t *testing.T) http.Header {
			h := signed(t, "sys.a", "secret-a", params, now.Add(4*time.Millisecond))
			h.Set("XroadVnpt-to", `["000.00.00.H41"]`)
			return h
		}, axis.ErrBadSignature},
		{"signed key removed from list", func(t *testing.T) http.Header {
			h := signed(t, "sys.a", "secret-a", params, now.Add(5*time.Millisecond))
			h["XroadVnpt-sign-header-key"] = []string{strings.Replace(h["XroadVnpt-sign-header-key"][0], ";status", "", 1)}
			return h
		}, axis.ErrBadSignature},
		{"header repeated", func(t *testing.T) http.Header {
			h := canonical(signed(t, "sys.a", "secret-a", params, now.Add(6*time.Millisecond)))
			h.Add("XroadVnpt-docId", "doc-1")
			return h
		}, axis.ErrBadSignature},
		{"missing hash", func(t *testing.T) http.Header {
			h := signed(t, "sys.a", "secret-a", params, now)
			delete(h, "XroadVnpt-hash-header")
			return h
		}, axis.ErrBadSignature},
		{"sign-header not JSON", func(t *testing.T) http.Header {
			h := signed(t, "sys.a", "secret-a", params, now)
			h["XroadVnpt-sign-header"] = []string{"systemid=sys.a"}
			return h
		}, axis.ErrBadSignature},
	} {
		t.Run(test.name, func(t *testing.T) {
			var v axis.Verifier
			id, err := v.VerifyHeaders(test.header(t), lookup, now, 5*time.Minute)
			if !errors.Is(err, test.want) || (test.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, test.want)
			}
			if err == nil && id != "sys.a" {
				t.Fatalf("systemID = %q", id)
			}
			var ve *axis.VerifyError
			if err != nil && (!errors.As(err, &ve) || ve.Reason == "") {
				t.Fatalf("error %v is not a *VerifyError with a reason", err)
			}
		})
	}
}

func TestVerifyHeadersReplay(t *testing.T) {
	var v axis.Verifier
	h := signed(t, "sys.a", "secret-a", map[string]string{"messagetype": "edoc"}, testTime)
	if _, err := v.VerifyHeaders(h, lookup, testTime, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyHeaders(canonical(h), lookup, testTime.Add(time.Second), time.Minute); !errors.Is(err, axis.ErrReplay) {
		t.Fatalf("replay: err = %v", err)
	}
	// Next millisecond, same parameters: a new request.
	h2 := signed(t, "sys.a", "secret-a", map[string]string{"messagetype": "edoc"}, testTime.Add(time.Millisecond))
	if _, err := v.VerifyHeaders(h2, lookup, testTime.Add(time.Second), time.Minute); err != nil {
		t.Fatal(err)
	}
	// Long after the window the entry is swept; the replay is then stale.
	later := testTime.Add(10 * time.Minute)
	h3 := signed(t, "sys.a", "secret-a", nil, later)
	if _, err := v.VerifyHeaders(h3, lookup, later, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyHeaders(h, lookup, later, time.Minute); !errors.Is(err, axis.ErrStaleTimestamp) {
		t.Fatalf("old replay: err = %v", err)
	}
}
