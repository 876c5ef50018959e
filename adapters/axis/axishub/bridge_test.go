package axishub

import (
	"errors"
	"fmt"
	"testing"

	"lienthong/adapters/axis"
	"lienthong/envelope"
	"lienthong/routing/intake"
)

func TestRefusedForGood(t *testing.T) {
	for _, test := range []struct {
		name string
		err  error
		want bool
	}{
		{"business refusal on HTTP 200", &axis.APIError{Op: "sendEdoc", Code: "18", HTTPStatus: 200}, true},
		{"bad request", &axis.APIError{Op: "sendEdoc", HTTPStatus: 400}, true},
		{"authentication: the hub's configuration, retried", &axis.APIError{Op: "sendEdoc", Code: "15", HTTPStatus: 401}, false},
		{"rate limited", &axis.APIError{Op: "sendEdoc", HTTPStatus: 429}, false},
		{"server error", &axis.APIError{Op: "sendEdoc", HTTPStatus: 503}, false},
		{"header value", fmt.Errorf("x: %w", axis.ErrHeaderValue), true},
		{"network", errors.New("connection reset"), false},
	} {
		t.Run(test.name, func(t *testing.T) {
			if got := refusedForGood(test.err); got != test.want {
				t.Fatalf("refusedForGood(%v) = %v", test.err, got)
			}
		})
	}
}

func TestIsPermanent(t *testing.T) {
	for _, test := range []struct {
		name string
		err  error
		want bool
	}{
		{"envelope refusal", fmt.Errorf("accept: %w", &envelope.Error{Code: envelope.CodeNotXML}), true},
		{"intake refusal", &intake.Error{Code: intake.CodeUnknownRecipient}, true},
		{"database down", errors.New("ledger: database unavailable"), false},
	} {
		t.Run(test.name, func(t *testing.T) {
			if got := IsPermanent(test.err); got != test.want {
				t.Fatalf("IsPermanent = %v", got)
			}
		})
	}
}

func TestSystemForAndLockKeys(t *testing.T) {
	b := &Bridge{cfg: Config{Systems: []System{
		{ID: "a", Organs: []string{"000.00.00.C01"}},
		{ID: "b"},
		{ID: "c", Organs: []string{"000.00.00.C03"}},
	}}}
	for organ, want := range map[string]string{"000.00.00.C01": "a", "000.00.00.C03": "c", "000.00.00.C02": "b"} {
		if got := b.systemFor(organ); got != want {
			t.Errorf("systemFor(%s) = %s, want %s", organ, got, want)
		}
	}
	if a, a2, bk := lockKey("a"), lockKey(string([]byte{'a'})), lockKey("b"); a == bk || a != a2 || a>>32 != 0x4c54_4158 {
		t.Fatalf("lock keys must be per system, stable and in the axis range: %x %x %x", a, a2, bk)
	}
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{
		{Endpoint: "http://x"},
		{Endpoint: "http://x", Systems: []System{{ID: "a", Secret: "s"}, {ID: "a", Secret: "s"}}},
		{Endpoint: "ftp://x", Systems: []System{{ID: "a", Secret: "s"}}},
		{Endpoint: "http://x", Systems: []System{{ID: "a"}}},
	} {
		if _, err := New(nil, nil, cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
