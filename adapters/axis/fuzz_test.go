package axis

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

var fuzzNow = time.Date(2026, 3, 2, 7, 5, 9, 42_000_000, time.UTC)

func FuzzVerifyHeaders(f *testing.F) {
	h, err := SignHeaders("sys.a", "secret-a", "application/json",
		map[string]string{"docId": "d-1", "to": `["000.00.00.H41"]`}, fuzzNow)
	if err != nil {
		f.Fatal(err)
	}
	//lint:ignore SA1008 the axis spells its headers this way on the wire; SignHeaders keeps that spelling
	f.Add(h[HeaderSign][0], h[HeaderSignKeys][0], h[HeaderHash][0], "docId", "d-1")
	f.Add(`{"XroadVnpt-systemid":"sys.a","XroadVnpt-timestamp":"x"}`, "systemid;timestamp", "00", "to", "")
	f.Add(`{"XroadVnpt-systemid":{"a":1}}`, "systemid", "zz", "", "")
	f.Add(`{"XroadVnpt-a":"1","XroadVnpt-a":"2"}`, "a;a", "", "a", "1")
	f.Add(`[`, `;;`, "", "\x00", "\xff")
	lookup := func(id string) (string, bool) { return "secret-a", id == "sys.a" }
	f.Fuzz(func(t *testing.T, sign, keys, hash, name, value string) {
		in := http.Header{}
		for k, v := range h {
			in[k] = v
		}
		in[HeaderSign] = []string{sign}
		in[HeaderSignKeys] = []string{keys}
		in[HeaderHash] = []string{hash}
		if name != "" {
			in[HeaderPrefix+name] = []string{value}
		}
		var v Verifier
		id, err := v.VerifyHeaders(in, lookup, fuzzNow, time.Minute)
		if err != nil {
			return
		}
		// Anything accepted must be a genuine signature over the received
		// values by the known system.
		if id != "sys.a" || HMACHex("secret-a", sign) != strings.ToLower(hash) {
			t.Fatalf("accepted a forged request: id=%q", id)
		}
		if _, err := v.VerifyHeaders(in, lookup, fuzzNow, time.Minute); err == nil {
			t.Fatal("replay accepted")
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{
		`{"status":"OK","ErrorCode":"0","ErrorDesc":"","DocId":"a","data":[{"docId":"x","from":1}]}`,
		`{"status":"OK","ErrorCode":0,"data":"PGE+PC9hPg=="}`,
		`{"ErrorCode":"0","data":[{"id":1,"pid":null,"code":"G22","name":"Văn phòng","oldCode":["x"]}]}`,
		`{"data":{"a":[1,2,{"b":null}]}}`,
		`null`, `[]`, `"x"`, `{"data":"\u0000"}`, `{"ErrorCode":{"x":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r wireResponse
		if err := json.Unmarshal(b, &r); err != nil {
			return
		}
		var list []wireListItem
		_ = r.decodeData("list", &list)
		var sent []wireSentItem
		_ = r.decodeData("sent", &sent)
		var agencies []wireAgency
		_ = r.decodeData("agencies", &agencies)
		var data string
		if r.decodeData("edoc", &data) == nil {
			_, _ = decodeBase64(data)
		}
	})
}

func TestDefaultTransportBoundsConnections(t *testing.T) {
	c, err := New(Config{Endpoint: "http://axis.invalid", SystemID: "sys", Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := c.cfg.HTTPClient.Transport.(*http.Transport)
	if !ok || tr.MaxConnsPerHost != DefaultMaxConns || tr.Proxy == nil {
		t.Fatalf("transport %+v", c.cfg.HTTPClient.Transport)
	}
}
