package axissim_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"lienthong/adapters/axis"
	"lienthong/adapters/axis/axissim"
)

const doc = "\ufeff<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" +
	`<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">` +
	`<edXML:edXMLHeader><edXML:MessageHeader><edXML:From><edXML:OrganId>000.00.00.G22</edXML:OrganId></edXML:From>` +
	`<edXML:To><edXML:OrganId>000.00.00.H41</edXML:OrganId></edXML:To><To><OrganId> 000.00.00.H53 </OrganId></To>` +
	`<edXML:ResponseFor><edXML:OrganId>000.00.00.X99</edXML:OrganId></edXML:ResponseFor></edXML:MessageHeader>` +
	`<edXML:TraceHeaderList><edXML:To><edXML:OrganId>000.00.00.X98</edXML:OrganId></edXML:To></edXML:TraceHeaderList>` +
	`</edXML:edXMLHeader></edXML:edXMLEnvelope></edXML>`

// TestStartAdmin runs the simulator on a real listener and drives it through
// the /_sim/ endpoints and the client.
func TestStartAdmin(t *testing.T) {
	srv := axissim.New(axissim.Config{
		Systems: []axissim.System{{ID: "sys.g22", Secret: "s1", Organ: "000.00.00.G22"}, {ID: "sys.h41", Secret: "s2", Organ: "000.00.00.H41"}},
		Admin:   true,
	})
	url, stop, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	post := func(path, body string) map[string]any {
		t.Helper()
		resp, err := http.Post(url+path, "application/octet-stream", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if err := json.Unmarshal(b, &out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: HTTP %d %s", path, resp.StatusCode, b)
		}
		return out
	}
	injected := post("/_sim/inject?organ=000.00.00.H41&messagetype=edoc", doc)["DocId"].(string)
	post("/_sim/fault?op=getEdoc&n=1&code=42&desc=boom", "")
	faults := func() map[string]int {
		t.Helper()
		resp, err := http.Get(url + "/_sim/faults")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Data map[string]int `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return body.Data
	}
	if f := faults(); f["getEdoc"] != 1 {
		t.Fatalf("faults before the call: %v", f)
	}

	c, err := axis.New(axis.Config{Endpoint: url + "/vxp", SystemID: "sys.h41", Secret: "s2"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var apiErr *axis.APIError
	if _, err := c.GetEdoc(ctx, injected); !errors.As(err, &apiErr) || apiErr.Code != "42" {
		t.Fatalf("injected fault: %v", err)
	}
	if f := faults(); len(f) != 0 {
		t.Fatalf("faults after the call took it: %v", f)
	}
	raw, err := c.GetEdoc(ctx, injected)
	if err != nil || string(raw) != doc {
		t.Fatalf("GetEdoc: %v", err)
	}
	if p := srv.Pending("000.00.00.H41"); len(p) != 1 || p[0].From != "000.00.00.G22" {
		t.Fatalf("pending = %+v", p)
	}

	// Recipients come from MessageHeader/To only, under any prefix.
	g22, _ := axis.New(axis.Config{Endpoint: url, SystemID: "sys.g22", Secret: "s1"})
	if _, err := g22.SendEdoc(ctx, []byte(doc), axis.MessageTypeEdoc, nil); err != nil {
		t.Fatal(err)
	}
	var organs []string
	for _, m := range srv.Sent("000.00.00.G22") {
		organs = append(organs, m.To)
	}
	if strings.Join(organs, ",") != "000.00.00.H41,000.00.00.H53" {
		t.Fatalf("recipients = %v", organs)
	}
	// A status package goes to ResponseFor/OrganId.
	if _, err := g22.SendEdoc(ctx, []byte(doc), axis.MessageTypeStatus, nil); err != nil {
		t.Fatal(err)
	}
	if p := srv.Pending("000.00.00.X99"); len(p) != 1 || p[0].MessageType != axis.MessageTypeStatus {
		t.Fatalf("status routing: %+v", p)
	}

	if got := post("/_sim/duplicate?op=getReceivedEdocList&n=0", ""); got["ErrorCode"] != "0" {
		t.Fatalf("%v", got)
	}
	resp, err := http.Get(url + "/_sim/pending?organ=000.00.00.H41")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Data []axissim.Message `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil || len(list.Data) != 2 || string(list.Data[0].Raw) != doc {
		t.Fatalf("admin pending: %d, %v", len(list.Data), err)
	}
	// Operations other than POST and unknown ones are refused.
	if resp, err := http.Get(url + "/getEdoc"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET getEdoc: %v", resp.StatusCode)
	}
}

func TestAdminDisabled(t *testing.T) {
	url, stop, err := axissim.Start(axissim.Config{}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get(url + "/_sim/pending?organ=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("admin served while disabled: %d", resp.StatusCode)
	}
}
