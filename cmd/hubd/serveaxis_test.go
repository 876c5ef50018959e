package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

func TestAxisFlags(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(good, []byte(`{"systems":[{"systemid":"lt.qh","secret":"s","organs":["000.00.00.C01"]}]}`), 0o600)
	os.WriteFile(bad, []byte(`{"systems":`), 0o600)
	for _, test := range []struct {
		name    string
		args    []string
		wantErr bool
		wantCfg bool
	}{
		{"none", nil, false, false},
		{"url without systems", []string{"--axis-url", "http://x"}, true, false},
		{"systems without url", []string{"--axis-systems", good}, true, false},
		{"unreadable systems", []string{"--axis-url", "http://x", "--axis-systems", filepath.Join(dir, "nope")}, true, false},
		{"malformed systems", []string{"--axis-url", "http://x", "--axis-systems", bad}, true, false},
		{"configured", []string{"--axis-url", "http://x", "--axis-systems", good}, false, true},
	} {
		t.Run(test.name, func(t *testing.T) {
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			build := axisFlags(fs)
			if err := fs.Parse(test.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := build()
			if (err != nil) != test.wantErr || (cfg != nil) != test.wantCfg {
				t.Fatalf("cfg %+v, err %v", cfg, err)
			}
			if cfg != nil && (cfg.Endpoint != "http://x" || len(cfg.Systems) != 1 || cfg.Systems[0].ID != "lt.qh" ||
				cfg.Systems[0].Secret != "s" || cfg.Systems[0].Organs[0] != "000.00.00.C01") {
				t.Fatalf("cfg %+v", cfg)
			}
		})
	}
}
