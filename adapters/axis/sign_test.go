package axis_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"lienthong/adapters/axis"
)

// testTime is 2 March 2026, 14:05:09.042 in Vietnam (UTC+7).
var testTime = time.Date(2026, 3, 2, 7, 5, 9, 42_000_000, time.UTC)

// TestSignHeadersVector is edxml.md §14 item 30. The expected sign-header is
// written by hand (keys in byte order, no HTML escaping, quotes of the "to"
// JSON escaped), and the HMAC was computed outside Go with
//
//	printf '%s' "$SIGN_HEADER" | openssl dgst -sha256 -hmac 'test-secret-not-real'
func TestSignHeadersVector(t *testing.T) {
	const (
		systemID = "lienthong.test"
		secret   = "test-secret-not-real"
		wantKeys = "Content-Type;messagetype;note;servicetype;systemid;timestamp;to"
		wantSign = `{"XroadVnpt-Content-Type":"application/json","XroadVnpt-messagetype":"edoc",` +
			`"XroadVnpt-note":"a<b>&c","XroadVnpt-servicetype":"eDoc","XroadVnpt-systemid":"lienthong.test",` +
			`"XroadVnpt-timestamp":"02032026T140509+0042","XroadVnpt-to":"[\"000.00.00.H41\"]"}`
		wantHash = "de13ad6da7e2c2e56e68ef9383d6912633060056edc33fbba36fbecc6e94e4fd"
	)
	params := map[string]string{
		"servicetype": "eDoc",
		"messagetype": "edoc",
		"to":          `["000.00.00.H41"]`,
		"note":        "a<b>&c", // Gson does not HTML-escape
	}
	h, err := axis.SignHeaders(systemID, secret, "application/json", params, testTime)
	if err != nil {
		t.Fatal(err)
	}
	// Independent HMAC, to pin the openssl value to this string.
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(wantSign))
	if got := hex.EncodeToString(mac.Sum(nil)); got != wantHash {
		t.Fatalf("test vector inconsistent: %s", got)
	}
	for _, c := range []struct{ name, want string }{
		{"XroadVnpt-sign-header-key", wantKeys},
		{"XroadVnpt-sign-header", wantSign},
		{"XroadVnpt-hash-header", wantHash},
		{"XroadVnpt-systemid", systemID},
		{"XroadVnpt-timestamp", "02032026T140509+0042"},
		{"XroadVnpt-Content-Type", "application/json"},
		{"XroadVnpt-servicetype", "eDoc"},
		{"XroadVnpt-messagetype", "edoc"},
		{"XroadVnpt-to", `["000.00.00.H41"]`},
		{"Content-Type", "application/json"},
		{"User-Agent", "JAVASDKAgent/1.0.0 XRoad/VPCP"},
		{"XroadVnpt-version", "3.0.201608"},
	} {
		// Direct map access: the SDK's spelling must be kept, not canonicalised.
		if got := h[c.name]; len(got) != 1 || got[0] != c.want {
			t.Errorf("%s = %q, want %q", c.name, got, c.want)
		}
	}
	if len(h) != 13 {
		t.Errorf("got %d headers, want 13: %v", len(h), h)
	}
}

func TestSignHeadersRejects(t *testing.T) {
	for _, test := range []struct {
		name   string
		params map[string]string
	}{
		{"override systemid", map[string]string{"systemid": "other"}},
		{"override timestamp in other case", map[string]string{"Timestamp": "x"}},
		{"override hash-header", map[string]string{"hash-header": "00"}},
		{"vietnamese value", map[string]string{"title": "Công văn"}},
		{"CRLF injection", map[string]string{"docId": "a\r\nX-Evil: 1"}},
		{"separator in name", map[string]string{"a;b": "x"}},
		{"names differing in case", map[string]string{"docId": "1", "docid": "2"}},
	} {
		t.Run(test.name, func(t *testing.T) {
			_, err := axis.SignHeaders("sys", "secret", "application/json", test.params, testTime)
			if !errors.Is(err, axis.ErrHeaderValue) {
				t.Fatalf("err = %v, want ErrHeaderValue", err)
			}
		})
	}
}

func TestTimestamp(t *testing.T) {
	for _, test := range []struct {
		name string
		in   time.Time
		want string
	}{
		{"milliseconds padded to four digits", testTime, "02032026T140509+0042"},
		{"zero milliseconds", time.Date(2026, 1, 5, 1, 2, 3, 0, time.UTC), "05012026T080203+0000"},
		{"999 ms, sub-ms truncated", time.Date(2026, 1, 5, 1, 2, 3, 999_999_999, time.UTC), "05012026T080203+0999"},
		{"UTC evening is next day in Vietnam", time.Date(2025, 12, 31, 20, 0, 0, 0, time.UTC), "01012026T030000+0000"},
	} {
		t.Run(test.name, func(t *testing.T) {
			got := axis.FormatTimestamp(test.in)
			if got != test.want {
				t.Fatalf("FormatTimestamp = %q, want %q", got, test.want)
			}
			back, err := axis.ParseTimestamp(got)
			if err != nil {
				t.Fatal(err)
			}
			if !back.Equal(test.in.Truncate(time.Millisecond)) {
				t.Fatalf("ParseTimestamp = %v, want %v", back, test.in.Truncate(time.Millisecond))
			}
		})
	}
	for _, bad := range []string{"", "02032026T140509", "02032026T140509+042", "02032026T140509-0042",
		"32032026T140509+0042", "02032026T140509+1000", "02032026T140509+00a2", "2026-03-02T14:05:09+0042"} {
		if _, err := axis.ParseTimestamp(bad); err == nil {
			t.Errorf("ParseTimestamp(%q) accepted", bad)
		}
	}
}

// TestSDKFileHash is edxml.md §14 item 31. SHA-256("abc") =
// ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad has
// the bytes 0x01, 0x03 and 0x00, which Integer.toHexString prints as "1",
// "3" and "0".
func TestSDKFileHash(t *testing.T) {
	for _, test := range []struct {
		name, in, want string
	}{
		{"bytes below 0x10", "abc", "ba7816bf8f1cfea414140de5dae2223b0361a396177a9cb410ff61f2015ad"},
		{"no byte below 0x10", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	} {
		t.Run(test.name, func(t *testing.T) {
			if got := axis.SDKFileHash([]byte(test.in)); got != test.want {
				t.Fatalf("SDKFileHash = %s, want %s", got, test.want)
			}
			std := sha256.Sum256([]byte(test.in))
			if test.in == "abc" && len(test.want) == len(hex.EncodeToString(std[:])) {
				t.Fatal("vector does not exercise the quirk")
			}
		})
	}
}
