package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestSystemFlag(t *testing.T) {
	for _, test := range []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"sys.a:s3cr:et:000.00.00.C01", "sys.a|s3cr:et|000.00.00.C01", false},
		{"sys.a:secret", "", true},
		{":secret:organ", "", true},
		{"sys.a:secret:", "", true},
	} {
		var f systemsFlag
		err := f.Set(test.in)
		if (err != nil) != test.wantErr {
			t.Fatalf("%q: err = %v", test.in, err)
		}
		if err == nil {
			if got := f[0].ID + "|" + f[0].Secret + "|" + f[0].Organ; got != test.want {
				t.Fatalf("%q: got %q", test.in, got)
			}
		}
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	incomplete := filepath.Join(dir, "incomplete.json")
	for name, body := range map[string]string{bad: "{", incomplete: `{"systems":[{"id":"a","organ":"b"}]}`} {
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{},
		{"--systems", filepath.Join(dir, "missing.json")},
		{"--systems", bad},
		{"--systems", incomplete},
		{"--listen", "256.0.0.1:99999", "--system", "a:b:c"},
		{"--bogus"},
	} {
		var out, errOut bytes.Buffer
		if err := run(args, &out, &errOut); err == nil {
			t.Errorf("run(%v) succeeded", args)
		}
	}
}
