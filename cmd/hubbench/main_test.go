package main

import (
	"os"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"20KB", 20 << 10, false},
		{"2MB", 2 << 20, false},
		{"200mb", 200 << 20, false},
		{"1.5KB", 1536, false},
		{"4096", 4096, false},
		{"1GB", 1 << 30, false},
		{"", 0, true},
		{"-1MB", 0, true},
		{"MB", 0, true},
		{"twenty", 0, true},
	} {
		got, err := parseSize(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestPercentileNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct{ p, want float64 }{{50, 50}, {95, 95}, {99, 99}, {100, 100}, {1, 1}} {
		if got := pct(d, tc.p); got != tc.want {
			t.Errorf("p%.0f = %v ms, want %v", tc.p, got, tc.want)
		}
	}
	if pct(nil, 99) != 0 {
		t.Error("empty input must give 0")
	}
	if d[0] != 100*time.Millisecond {
		t.Error("pct must not reorder its input")
	}
}

func TestFlagsDefaultsAndChecks(t *testing.T) {
	c, err := parseFlags([]string{"--size", "2MB", "--duration", "10s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.docBytes != 2<<20 || c.docs != 1024 { // 10 s × 1,500/s capped at 2 GiB / 2 MiB
		t.Errorf("docBytes %d docs %d", c.docBytes, c.docs)
	}
	for _, bad := range [][]string{{"--concurrency", "0"}, {"--server", "http://x"}, {"--size", "big"}, {"--rate", "-5"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%v) accepted", bad)
		}
	}
}

// The CPU and memory reading works on this process: it spends CPU, and its
// peak RSS is at least what it holds.
func TestUsageReadsProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	before, err := usage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	after, _ := usage(os.Getpid())
	if after.hubCPU <= before.hubCPU || after.cpu < after.hubCPU {
		t.Errorf("own CPU %v → %v, total %v", before.hubCPU, after.hubCPU, after.cpu)
	}
	if after.cpu <= before.cpu {
		t.Errorf("CPU did not grow: %v → %v", before.cpu, after.cpu)
	}
	if after.hubHWM < int64(len(buf)) {
		t.Errorf("VmHWM %d < %d bytes held", after.hubHWM, len(buf))
	}
	_ = buf[x%len(buf)]
}

// The open loop offers documents at the rate asked, none before it is due,
// and stops at the end of the window or when the documents run out.
func TestScheduleKeepsTheRate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rate   float64
		window time.Duration
		n      int
		lo, hi int
	}{
		{"window ends first", 500, 200 * time.Millisecond, 1000, 99, 101}, // dueAt < 200 ms: i = 0…99
		{"documents end first", 500, time.Second, 30, 30, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			due := make(chan int64, 4)
			go schedule(t.Context(), start, start.Add(tc.window), tc.rate, tc.n, due)
			got := 0
			for i := range due {
				if i != int64(got) {
					t.Fatalf("document %d came as number %d", i, got)
				}
				if now := time.Now(); now.Before(dueAt(start, i, tc.rate)) {
					t.Fatalf("document %d sent %v before it was due", i, dueAt(start, i, tc.rate).Sub(now))
				}
				got++
			}
			if got < tc.lo || got > tc.hi {
				t.Errorf("%d documents offered, want %d…%d", got, tc.lo, tc.hi)
			}
		})
	}
	if d := dueAt(time.Unix(0, 0), 250, 1000).Sub(time.Unix(0, 0)); d != 250*time.Millisecond {
		t.Errorf("document 250 at 1000/s due after %v, want 250ms", d)
	}
}

// The load generator's and the machine's CPU clocks move with work done.
func TestSelfAndMachineCPU(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc")
	}
	s0, m0 := selfCPU(), machineCPU()
	// Spin until this process has used 200 ms of CPU (on a loaded machine
	// that takes longer than 200 ms); the machine's busy time covers it.
	deadline := time.Now().Add(20 * time.Second)
	for x := 0; selfCPU()-s0 < 200*time.Millisecond; x++ {
		if time.Now().After(deadline) {
			t.Fatalf("own CPU grew by only %v in 20 s of spinning", selfCPU()-s0)
		}
	}
	s1, m1 := selfCPU(), machineCPU()
	if s1-s0 < 200*time.Millisecond {
		t.Errorf("own CPU grew by %v", s1-s0)
	}
	if m1-m0 < 150*time.Millisecond { // /proc/stat counts in 10 ms ticks
		t.Errorf("machine CPU grew by %v while this process used %v", m1-m0, s1-s0)
	}
}
