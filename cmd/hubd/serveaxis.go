package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"lienthong/adapters/axis/axishub"
)

// axisFlags registers the national-axis flags of `hubd serve` and returns a
// function that builds the axis configuration after parsing (nil: no axis).
//
// The systems file holds secrets; mount it from a secret store:
//
//	{"systems": [{"systemid": "…", "secret": "…", "organs": ["000.00.00.C01", …]}]}
func axisFlags(fs *flag.FlagSet) func() (*axishub.Config, error) {
	url := fs.String("axis-url", "", "national axis endpoint (LT_AXIS_URL); empty: no axis edge")
	systems := fs.String("axis-systems", "", "JSON file of the hub's axis systems and secrets (LT_AXIS_SYSTEMS)")
	poll := fs.Duration("axis-poll", axishub.DefaultPollInterval, "pause between axis polls")
	sync := fs.Duration("axis-sync", axishub.DefaultSyncInterval, "pause between axis directory syncs")
	return func() (*axishub.Config, error) {
		if *url == "" {
			if *systems != "" {
				return nil, errors.New("--axis-systems cần --axis-url / --axis-systems needs --axis-url")
			}
			return nil, nil
		}
		if *systems == "" {
			return nil, errors.New("--axis-url cần --axis-systems / --axis-url needs --axis-systems")
		}
		b, err := os.ReadFile(*systems)
		if err != nil {
			return nil, fmt.Errorf("axis systems: %w", err)
		}
		var f struct {
			Systems []axishub.System `json:"systems"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("tệp hệ thống trục không hợp lệ / invalid axis systems file %s: %w", *systems, err)
		}
		return &axishub.Config{Endpoint: *url, Systems: f.Systems, PollInterval: max(*poll, time.Second),
			SyncInterval: max(*sync, time.Minute)}, nil
	}
}
