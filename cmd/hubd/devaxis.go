package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"lienthong/adapters/axis"
	"lienthong/adapters/axis/axishub"
	"lienthong/adapters/axis/axissim"
)

// demoMinistries are the counterparts of `hubd dev` on the simulated
// national axis: synthetic codes (G91, H95 are not in use), clearly marked.
var demoMinistries = []struct {
	Code, OldCode, Name, SystemID string
}{
	{"000.00.00.G91", "G91", "Bộ Thử nghiệm (DEMO)", "demo.bo-thu-nghiem"},
	{"000.00.00.H95", "H95", "UBND tỉnh Thử nghiệm (DEMO)", "demo.tinh-thu-nghiem"},
}

// devHubSystem is the dev hub's own systemid on the simulated axis.
const devHubSystem = "demo.lienthong"

// AxisCreds is the "axis" object of credentials.json: the simulator's URL
// and the systems of the demo ministries, so that anyone can act as a
// ministry with the axis API (HMAC-signed XroadVnpt-* headers).
type AxisCreds struct {
	URL     string        `json:"url"`
	Admin   string        `json:"admin_url"` // the simulator's unauthenticated /_sim/ endpoints
	Demo    bool          `json:"demo"`
	Systems []AxisSystemC `json:"systems"`
}

// AxisSystemC is one demo ministry's system.
type AxisSystemC struct {
	SystemID string `json:"systemid"`
	Secret   string `json:"secret"`
	Organ    string `json:"organ"`
	Name     string `json:"name"`
}

// startDevAxis starts the axis simulator (in memory: its queues are lost
// when hubd stops) with the demo ministries and the dev hub's own system,
// records the "axis" object in credentials.json, and returns the hub's axis
// configuration and a stop function. listen "off" disables it.
func startDevAxis(dir, listen string, creds *Credentials, log *slog.Logger) (*axishub.Config, func(), error) {
	if listen == "off" {
		return nil, func() {}, nil
	}
	oldSecrets := map[string]string{}
	if b, err := os.ReadFile(filepath.Join(dir, "credentials.json")); err == nil {
		var old struct {
			Axis *AxisCreds `json:"axis"`
		}
		if json.Unmarshal(b, &old) == nil && old.Axis != nil {
			for _, s := range old.Axis.Systems {
				oldSecrets[s.SystemID] = s.Secret
			}
		}
	}
	hubSecret := newSecret("")
	na := make([]string, 0, len(creds.Organs))
	agencies := make([]axis.Agency, 0, len(demoMinistries)+len(creds.Organs))
	for _, o := range creds.Organs {
		na = append(na, o.Code)
		agencies = append(agencies, axis.Agency{ID: fmt.Sprint(len(agencies) + 1), Code: o.Code, Name: o.Name})
	}
	systems := []axissim.System{{ID: devHubSystem, Secret: hubSecret, Organ: na[0], Organs: na}}
	ac := &AxisCreds{Demo: true}
	for _, m := range demoMinistries {
		secret := newSecret(oldSecrets[m.SystemID])
		systems = append(systems, axissim.System{ID: m.SystemID, Secret: secret, Organ: m.Code})
		agencies = append(agencies, axis.Agency{ID: fmt.Sprint(len(agencies) + 1), Code: m.Code, OldCode: m.OldCode, Name: m.Name})
		ac.Systems = append(ac.Systems, AxisSystemC{SystemID: m.SystemID, Secret: secret, Organ: m.Code, Name: m.Name})
	}
	url, stop, err := axissim.Start(axissim.Config{Systems: systems, Agencies: agencies, Admin: true, Logger: log}, listen)
	if err != nil {
		return nil, nil, err
	}
	ac.URL, ac.Admin = url, url+"/_sim/"
	creds.Axis = ac
	if err := saveCredentials(dir, creds); err != nil {
		stop()
		return nil, nil, err
	}
	return &axishub.Config{Endpoint: url, Systems: []axishub.System{{ID: devHubSystem, Secret: hubSecret, Organs: na}},
		PollInterval: 2 * time.Second, SyncInterval: time.Minute, Logger: log}, stop, nil
}

func newSecret(reuse string) string {
	if reuse != "" {
		return reuse
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// saveCredentials rewrites credentials.json atomically.
func saveCredentials(dir string, c *Credentials) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "credentials.json")
	if err := os.WriteFile(path+".tmp", append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

func axisBanner(c *Credentials) {
	if c.Axis == nil {
		return
	}
	fmt.Fprintf(os.Stdout, "  Trục liên thông mô phỏng / simulated national axis: %s   (DEMO)\n", c.Axis.URL)
	for _, s := range c.Axis.Systems {
		fmt.Fprintf(os.Stdout, "    bộ, ngành thử nghiệm / demo ministry %s  systemid %s  (secret: credentials.json .axis)\n", s.Organ, s.SystemID)
	}
	fmt.Fprintln(os.Stdout)
}
