package axis_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"lienthong/adapters/axis"
	"lienthong/adapters/axis/axissim"
)

// edocTo returns a minimal edXML package from → to, with the irregular bytes a
// byte-exact transport must keep: a BOM, CRLF line ends, Vietnamese text and
// a trailing CRLF.
func edocTo(from string, to ...string) []byte {
	var b strings.Builder
	b.WriteString("\ufeff<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n")
	b.WriteString(`<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">` + "\r\n")
	b.WriteString("<edXML:edXMLHeader><edXML:MessageHeader><edXML:From><edXML:OrganId>" + from + "</edXML:OrganId></edXML:From>\r\n")
	for _, t := range to {
		b.WriteString("<edXML:To><edXML:OrganId>" + t + "</edXML:OrganId><edXML:OrganName>Cơ quan nhận</edXML:OrganName></edXML:To>\r\n")
	}
	b.WriteString("<edXML:Subject>V/v thử nghiệm liên thông &amp; ký số</edXML:Subject>\r\n")
	b.WriteString("<edXML:ResponseFor><edXML:OrganId>000.00.00.G99</edXML:OrganId></edXML:ResponseFor>\r\n")
	b.WriteString("</edXML:MessageHeader></edXML:edXMLHeader></edXML:edXMLEnvelope></edXML>\r\n")
	return []byte(b.String())
}

// statusFor returns a status package from → the original sender.
func statusFor(from, original, code string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
<edXML:edXMLHeader><edXML:MessageHeader>
<edXML:From><edXML:OrganId>` + from + `</edXML:OrganId></edXML:From>
<edXML:ResponseFor><edXML:OrganId>` + original + `</edXML:OrganId><edXML:DocumentId>` + original + `,2026/03/02,12/VPQH-TH</edXML:DocumentId></edXML:ResponseFor>
<edXML:StatusCode>` + code + `</edXML:StatusCode><edXML:Description>Đã đến</edXML:Description>
</edXML:MessageHeader></edXML:edXMLHeader></edXML:edXMLEnvelope></edXML>`)
}

func TestClientRoundTrip(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	na, h41, g22 := e.client(t, 0), e.client(t, 1), e.client(t, 2)

	agencies, err := na.GetAgenciesList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(agencies, testAgencies) {
		t.Fatalf("agencies = %+v", agencies)
	}

	// Recipients read from <To>.
	doc1 := edocTo(organNA, organH41)
	sent1, err := na.SendEdoc(ctx, doc1, axis.MessageTypeEdoc, nil)
	if err != nil || sent1 == "" {
		t.Fatalf("SendEdoc: %q, %v", sent1, err)
	}
	// Recipients from the "to" header (an old code is mapped to the current one).
	doc2 := append(edocTo(organNA, organH41), "\r\n"...) // ends with two CRLFs
	sent2, err := na.SendEdoc(ctx, doc2, axis.MessageTypeEdoc, []string{"G22", organH41})
	if err != nil {
		t.Fatal(err)
	}

	if p := e.sim.Pending(organH41); len(p) != 2 || !bytes.Equal(p[0].Raw, doc1) || !bytes.Equal(p[1].Raw, doc2) {
		t.Fatalf("H41 pending = %d packages, bytes kept: %v", len(p), len(p) == 2 && bytes.Equal(p[0].Raw, doc1))
	}
	if p := e.sim.Pending(organG22); len(p) != 1 || p[0].From != organNA {
		t.Fatalf("G22 pending = %+v", p)
	}
	if s := e.sim.Sent(organNA); len(s) != 3 {
		t.Fatalf("NA sent %d, want 3", len(s))
	}

	// H41 receives both, byte for byte, and consumes them.
	items, err := h41.GetReceivedEdocList(ctx, axis.MessageTypeEdoc)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 {
		t.Fatalf("H41 list = %+v", items)
	}
	for i, it := range items {
		raw, err := h41.GetEdoc(ctx, it.DocID)
		if err != nil {
			t.Fatal(err)
		}
		if want := [][]byte{doc1, doc2}[i]; !bytes.Equal(raw, want) {
			t.Fatalf("GetEdoc %d: bytes differ:\n%q\n%q", i, raw, want)
		}
		if it.From != organNA || it.To != organH41 || it.MessageType != axis.MessageTypeEdoc || it.Status != axissim.StateInitial {
			t.Fatalf("item %+v", it)
		}
		if err := h41.UpdateStatus(ctx, it.DocID, axis.StatusDone); err != nil {
			t.Fatal(err)
		}
	}
	if p := e.sim.Pending(organH41); len(p) != 0 {
		t.Fatalf("H41 still has %d pending", len(p))
	}
	if got := e.sim.StatusUpdates()[items[0].DocID]; !slices.Equal(got, []string{"done"}) {
		t.Fatalf("status updates = %v", got)
	}
	// Another system cannot read H41's package.
	var apiErr *axis.APIError
	if _, err := g22.GetEdoc(ctx, items[0].DocID); !errors.As(err, &apiErr) || apiErr.Code != axissim.CodeNotFound {
		t.Fatalf("G22 reading H41's package: %v", err)
	}

	// H41 answers with a status package, routed by ResponseFor/OrganId.
	st := statusFor(organH41, organNA, "01")
	if _, err := h41.SendEdoc(ctx, st, axis.MessageTypeStatus, nil); err != nil {
		t.Fatal(err)
	}
	if edocs, err := na.GetReceivedEdocList(ctx, axis.MessageTypeEdoc); err != nil || len(edocs) != 0 {
		t.Fatalf("NA edoc list: %v, %v", edocs, err)
	}
	statuses, err := na.GetReceivedEdocList(ctx, axis.MessageTypeStatus)
	if err != nil || len(statuses) != 1 {
		t.Fatalf("NA status list: %v, %v", statuses, err)
	}
	if raw, err := na.GetEdoc(ctx, statuses[0].DocID); err != nil || !bytes.Equal(raw, st) {
		t.Fatalf("status bytes: %v", err)
	}
	if err := na.UpdateStatus(ctx, statuses[0].DocID, axis.StatusProcessing); err != nil {
		t.Fatal(err)
	}

	// The sender follows its sends.
	sentItems, err := na.GetSentEdocList(ctx, axis.MessageTypeEdoc, sent2)
	if err != nil {
		t.Fatal(err)
	}
	if len(sentItems) != 2 {
		t.Fatalf("sent list for %s = %+v", sent2, sentItems)
	}
	for _, si := range sentItems {
		want := axissim.StateInitial
		if si.ToCode == organH41 {
			want = axis.StatusDone
		}
		if si.SenderDocID != sent2 || si.FromCode != organNA || si.ReceiveStatus != want {
			t.Fatalf("sent item %+v", si)
		}
	}
	all, err := na.GetSentEdocList(ctx, axis.MessageTypeEdoc, "")
	if err != nil || len(all) != 3 {
		t.Fatalf("all sent: %d, %v", len(all), err)
	}

	e.assertNoRefusals(t)
}

func TestClientSendErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	na := e.client(t, 0)
	var apiErr *axis.APIError
	if _, err := na.SendEdoc(ctx, []byte("<not-xml"), axis.MessageTypeEdoc, nil); !errors.As(err, &apiErr) || apiErr.Code != axissim.CodeInvalidFile {
		t.Fatalf("bad XML: %v", err)
	}
	if _, err := na.SendEdoc(ctx, edocTo(organNA), axis.MessageTypeEdoc, nil); !errors.As(err, &apiErr) || apiErr.Code != axissim.CodeUnknownReceiver {
		t.Fatalf("no recipient: %v", err)
	}
	if _, err := na.SendEdoc(ctx, edocTo(organNA, organH41), "memo", nil); err == nil {
		t.Fatal("bad messagetype accepted")
	}
	if _, err := na.GetEdoc(ctx, "mã-số"); !errors.Is(err, axis.ErrHeaderValue) {
		t.Fatalf("non-ASCII docId: %v", err)
	}
	if err := na.UpdateStatus(ctx, "x", "finished"); err == nil {
		t.Fatal("bad status accepted")
	}
	e.assertNoRefusals(t)
}

func TestClientRetries(t *testing.T) {
	ctx := context.Background()
	for _, test := range []struct {
		name      string
		fault     axissim.Fault
		n         int
		retries   int
		wantCalls int
		wantErr   bool
		retryable bool
	}{
		{"500 twice then success", axissim.Fault{HTTPStatus: 500}, 2, 3, 3, false, false},
		{"503 with JSON body then success", axissim.Fault{HTTPStatus: 503, ErrorCode: "99"}, 1, 3, 2, false, false},
		{"500 more often than retries", axissim.Fault{HTTPStatus: 500}, 5, 2, 3, true, true},
		{"ErrorCode not 0 is not retried", axissim.Fault{ErrorCode: "99", ErrorDesc: "Lỗi hệ thống"}, 1, 3, 1, true, false},
		{"4xx is not retried", axissim.Fault{HTTPStatus: 400}, 1, 3, 1, true, false},
		{"no retries configured", axissim.Fault{HTTPStatus: 502}, 1, -1, 1, true, true},
	} {
		t.Run(test.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.client(t, 1, func(cfg *axis.Config) { cfg.MaxRetries = test.retries })
			e.sim.Inject(organH41, axis.MessageTypeEdoc, edocTo(organG22, organH41))
			e.sim.FailNext(axis.OpGetReceivedEdocList, test.n, test.fault)
			items, err := c.GetReceivedEdocList(ctx, axis.MessageTypeEdoc)
			if (err != nil) != test.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !test.wantErr && len(items) != 1 {
				t.Fatalf("items = %v", items)
			}
			if got := e.callCount(axis.OpGetReceivedEdocList); got != test.wantCalls {
				t.Fatalf("calls = %d, want %d", got, test.wantCalls)
			}
			if err != nil {
				var apiErr *axis.APIError
				if !errors.As(err, &apiErr) || apiErr.Op != axis.OpGetReceivedEdocList {
					t.Fatalf("err %v is not an *APIError for the op", err)
				}
				if axis.IsRetryable(err) != test.retryable {
					t.Fatalf("IsRetryable = %v", !test.retryable)
				}
				if test.fault.ErrorCode != "" && (apiErr.Code != test.fault.ErrorCode || apiErr.Desc != test.fault.ErrorDesc) {
					t.Fatalf("APIError = %+v", apiErr)
				}
			}
			e.assertNoRefusals(t)
		})
	}
}

func TestClientTimeouts(t *testing.T) {
	ctx := context.Background()
	t.Run("attempt timeout is reported and retryable", func(t *testing.T) {
		e := newEnv(t)
		c := e.client(t, 0, func(cfg *axis.Config) { cfg.Timeout = 100 * time.Millisecond; cfg.MaxRetries = -1 })
		e.sim.FailNext(axis.OpGetAgenciesList, 1, axissim.Fault{Hang: true})
		start := time.Now()
		_, err := c.GetAgenciesList(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || !axis.IsRetryable(err) {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("took %v", d)
		}
	})
	t.Run("hang then success on retry", func(t *testing.T) {
		e := newEnv(t)
		c := e.client(t, 0, func(cfg *axis.Config) { cfg.Timeout = 100 * time.Millisecond; cfg.MaxRetries = 2 })
		e.sim.FailNext(axis.OpGetAgenciesList, 1, axissim.Fault{Hang: true})
		if _, err := c.GetAgenciesList(ctx); err != nil {
			t.Fatal(err)
		}
		if got := e.callCount(axis.OpGetAgenciesList); got != 2 {
			t.Fatalf("calls = %d", got)
		}
		e.assertNoRefusals(t)
	})
	t.Run("caller's cancellation stops retries", func(t *testing.T) {
		e := newEnv(t)
		c := e.client(t, 0, func(cfg *axis.Config) { cfg.Timeout = 5 * time.Second; cfg.MaxRetries = 5 })
		e.sim.FailNext(axis.OpGetAgenciesList, 10, axissim.Fault{Hang: true})
		cctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
		defer cancel()
		_, err := c.GetAgenciesList(cctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		if got := e.callCount(axis.OpGetAgenciesList); got != 1 {
			t.Fatalf("calls = %d, want 1", got)
		}
	})
}

func TestClientResponseLimitsAndShapes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	big := edocTo(organG22, organH41)
	big = append(big, bytes.Repeat([]byte("<!-- padding -->\r\n"), 512)...)
	id := e.sim.Inject(organH41, axis.MessageTypeEdoc, big)

	small := e.client(t, 1, func(cfg *axis.Config) { cfg.MaxEdocBytes = 4096 })
	_, err := small.GetEdoc(ctx, id)
	if !errors.Is(err, axis.ErrResponseTooLarge) || axis.IsRetryable(err) {
		t.Fatalf("err = %v", err)
	}
	if raw, err := e.client(t, 1).GetEdoc(ctx, id); err != nil || !bytes.Equal(raw, big) {
		t.Fatalf("default limit: %v", err)
	}

	// Answers with the shapes other servers use: numeric ErrorCode and ids,
	// MIME-wrapped base64, escaped slashes.
	for _, test := range []struct {
		name, body string
		check      func(t *testing.T, c *axis.Client)
	}{
		{"numeric fields", `{"status":"OK","ErrorCode":0,"ErrorDesc":"ok","data":[{"id":7,"pid":null,"code":"000.00.00.H41","name":"UBND","mail":"","oldCode":"H41"}]}`,
			func(t *testing.T, c *axis.Client) {
				a, err := c.GetAgenciesList(ctx)
				if err != nil || len(a) != 1 || a[0].ID != "7" || a[0].PID != "" {
					t.Fatalf("%+v, %v", a, err)
				}
			}},
		{"MIME base64", `{"status":"OK","ErrorCode":"0","data":"PGE+\r\neDwv\r\nYT4="}`,
			func(t *testing.T, c *axis.Client) {
				raw, err := c.GetEdoc(ctx, "d")
				if err != nil || string(raw) != "<a>x</a>" {
					t.Fatalf("%q, %v", raw, err)
				}
			}},
		{"escaped slash", `{"status":"OK","ErrorCode":"0","data":"P\/8="}`,
			func(t *testing.T, c *axis.Client) {
				raw, err := c.GetEdoc(ctx, "d")
				if err != nil || !bytes.Equal(raw, []byte{0x3f, 0xff}) {
					t.Fatalf("%q, %v", raw, err)
				}
			}},
		{"not JSON", `<html>Bad gateway</html>`,
			func(t *testing.T, c *axis.Client) {
				if _, err := c.GetAgenciesList(ctx); !errors.Is(err, axis.ErrBadResponse) {
					t.Fatalf("%v", err)
				}
			}},
		{"missing ErrorCode", `{"status":"OK"}`,
			func(t *testing.T, c *axis.Client) {
				var apiErr *axis.APIError
				if err := c.UpdateStatus(ctx, "d", "done"); !errors.As(err, &apiErr) {
					t.Fatalf("%v", err)
				}
			}},
		{"bad base64", `{"status":"OK","ErrorCode":"0","data":"***"}`,
			func(t *testing.T, c *axis.Client) {
				if _, err := c.GetEdoc(ctx, "d"); !errors.Is(err, axis.ErrBadResponse) {
					t.Fatalf("%v", err)
				}
			}},
	} {
		t.Run(test.name, func(t *testing.T) {
			srv := newStaticServer(t, test.body)
			c, err := axis.New(axis.Config{Endpoint: srv, SystemID: "s", Secret: "k", MaxRetries: -1})
			if err != nil {
				t.Fatal(err)
			}
			test.check(t, c)
		})
	}
}

func TestClientDuplicatesInLists(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	na, h41 := e.client(t, 0), e.client(t, 1)
	sent, err := na.SendEdoc(ctx, edocTo(organNA, organH41), axis.MessageTypeEdoc, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.sim.DuplicateNext(axis.OpGetReceivedEdocList, 1)
	e.sim.DuplicateNext(axis.OpGetSentEdocList, 1)
	items, err := h41.GetReceivedEdocList(ctx, axis.MessageTypeEdoc)
	if err != nil || len(items) != 2 || items[0].DocID != items[1].DocID {
		t.Fatalf("duplicated list = %+v, %v", items, err)
	}
	sentItems, err := na.GetSentEdocList(ctx, axis.MessageTypeEdoc, sent)
	if err != nil || len(sentItems) != 2 || sentItems[0] != sentItems[1] {
		t.Fatalf("duplicated sent list = %+v, %v", sentItems, err)
	}
	if items, _ := h41.GetReceivedEdocList(ctx, axis.MessageTypeEdoc); len(items) != 1 {
		t.Fatalf("duplication did not stop: %d", len(items))
	}
}

// TestClientSendRetryDuplicates pins a documented limit: a sendEdoc whose
// answer is lost after the axis stored it is sent again on retry.
func TestClientSendRetryDuplicates(t *testing.T) {
	e := newEnv(t)
	na := e.client(t, 0)
	e.sim.FailNext(axis.OpSendEdoc, 1, axissim.Fault{HTTPStatus: 500, AfterEffect: true})
	if _, err := na.SendEdoc(context.Background(), edocTo(organNA, organH41), axis.MessageTypeEdoc, nil); err != nil {
		t.Fatal(err)
	}
	if p := e.sim.Pending(organH41); len(p) != 2 {
		t.Fatalf("pending = %d, want 2 (at-least-once send)", len(p))
	}
}

// TestSimulatorRefuses sends hand-built requests to the simulator over HTTP.
func TestSimulatorRefuses(t *testing.T) {
	sys := testSystems[1]
	params := map[string]string{"servicetype": "eDoc", "messagetype": "edoc"}
	for _, test := range []struct {
		name  string
		build func(t *testing.T, now time.Time) []http.Header // requests sent in order; the last is checked
		want  error
	}{
		{"wrong HMAC", func(t *testing.T, now time.Time) []http.Header {
			return []http.Header{signed(t, sys.ID, "not-the-secret", params, now)}
		}, axis.ErrBadSignature},
		{"unknown systemid", func(t *testing.T, now time.Time) []http.Header {
			return []http.Header{signed(t, "sys.unknown", sys.Secret, params, now)}
		}, axis.ErrUnknownSystem},
		{"stale timestamp", func(t *testing.T, now time.Time) []http.Header {
			return []http.Header{signed(t, sys.ID, sys.Secret, params, now.Add(-10*time.Minute))}
		}, axis.ErrStaleTimestamp},
		{"replayed timestamp and hash", func(t *testing.T, now time.Time) []http.Header {
			h := signed(t, sys.ID, sys.Secret, params, now)
			return []http.Header{h, h}
		}, axis.ErrReplay},
		{"tampered value under a valid sign-header", func(t *testing.T, now time.Time) []http.Header {
			h := signed(t, sys.ID, sys.Secret, params, now)
			h["XroadVnpt-messagetype"] = []string{"status"}
			return []http.Header{h}
		}, axis.ErrBadSignature},
		{"unsigned parameter added", func(t *testing.T, now time.Time) []http.Header {
			h := signed(t, sys.ID, sys.Secret, params, now)
			h["XroadVnpt-fromDate"] = []string{"2020/01/01"}
			return []http.Header{h}
		}, axis.ErrBadSignature},
	} {
		t.Run(test.name, func(t *testing.T) {
			e := newEnv(t)
			reqs := test.build(t, time.Now())
			var resp *http.Response
			for _, h := range reqs {
				req, err := http.NewRequest(http.MethodPost, e.url+"/"+axis.OpGetReceivedEdocList, strings.NewReader("{}"))
				if err != nil {
					t.Fatal(err)
				}
				req.Header = h
				if resp, err = http.DefaultClient.Do(req); err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("HTTP %d, want 401", resp.StatusCode)
			}
			refusals := e.sim.Refusals()
			if len(refusals) != 1 || !errors.Is(refusals[0].Err, test.want) {
				t.Fatalf("refusals = %v, want one %v", refusals, test.want)
			}
		})
	}

	t.Run("client with a wrong secret gets a non-retryable APIError", func(t *testing.T) {
		e := newEnv(t)
		c := e.client(t, 1, func(cfg *axis.Config) { cfg.Secret = "wrong" })
		_, err := c.GetReceivedEdocList(context.Background(), axis.MessageTypeEdoc)
		var apiErr *axis.APIError
		if !errors.As(err, &apiErr) || apiErr.HTTPStatus != 401 || apiErr.Code != axissim.CodeAuth || axis.IsRetryable(err) {
			t.Fatalf("err = %v", err)
		}
		if n := len(e.sim.Refusals()); n != 1 {
			t.Fatalf("%d refusals: retried", n)
		}
	})
}

// TestClientFixedClock: with a clock that never moves, successive requests
// still carry distinct timestamps, so none is taken for a replay.
func TestClientFixedClock(t *testing.T) {
	e := newEnv(t)
	fixed := time.Now()
	c := e.client(t, 1, func(cfg *axis.Config) { cfg.Now = func() time.Time { return fixed } })
	e.sim.FailNext(axis.OpGetReceivedEdocList, 2, axissim.Fault{HTTPStatus: 500})
	for i := range 5 {
		if _, err := c.GetReceivedEdocList(context.Background(), axis.MessageTypeEdoc); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	e.assertNoRefusals(t)
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []axis.Config{
		{SystemID: "s", Secret: "k"},
		{Endpoint: "ftp://x", SystemID: "s", Secret: "k"},
		{Endpoint: "http://x", Secret: "k"},
		{Endpoint: "http://x", SystemID: "hệ thống", Secret: "k"},
		{Endpoint: "http://x", SystemID: "s"},
	} {
		if _, err := axis.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func newStaticServer(t *testing.T, body string) string {
	t.Helper()
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}))
	return srv
}

func TestASCIIReason(t *testing.T) {
	for _, test := range []struct{ in, want string }{
		{"", ""},
		{"  not_xml: stray bytes\n", "not_xml: stray bytes"},
		{"lỗi / error", "l?i / error"},
		{strings.Repeat("x", 300), strings.Repeat("x", axis.MaxReasonLen)},
	} {
		if got := axis.ASCIIReason(test.in); got != test.want {
			t.Errorf("ASCIIReason(%q) = %q, want %q", test.in, got, test.want)
		}
	}
}
