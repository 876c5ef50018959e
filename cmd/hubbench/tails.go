package main

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// delivery is one (document, recipient) delivery: when its document was due,
// how long submit→delivered took, and the recipient's channel.
type delivery struct {
	start   time.Time
	lat     time.Duration
	channel string
}

// Tail is a latency distribution in milliseconds.
type Tail struct {
	N     int     `json:"n"`
	P50Ms float64 `json:"p50_ms"`
	P95Ms float64 `json:"p95_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// SecondTail is the distribution of the deliveries on one channel of the
// documents due in one second of the run.
type SecondTail struct {
	Second  int    `json:"second"`
	Channel string `json:"channel"`
	Tail
}

func tailOf(d []time.Duration) Tail {
	t := Tail{N: len(d), P50Ms: pct(d, 50), P95Ms: pct(d, 95), P99Ms: pct(d, 99)}
	for _, x := range d {
		t.MaxMs = max(t.MaxMs, float64(x.Microseconds())/1000)
	}
	return t
}

// tails splits samples by channel, and by channel and second since start
// (when the document was due), and returns the distribution per channel
// and the timeline per second and channel, in that order.
func tails(samples []delivery, start time.Time) (map[string]Tail, []SecondTail) {
	if len(samples) == 0 {
		return nil, nil
	}
	type key struct {
		sec     int
		channel string
	}
	byChannel := map[string][]time.Duration{}
	bySecond := map[key][]time.Duration{}
	for _, s := range samples {
		byChannel[s.channel] = append(byChannel[s.channel], s.lat)
		k := key{int(s.start.Sub(start) / time.Second), s.channel}
		bySecond[k] = append(bySecond[k], s.lat)
	}
	ch := make(map[string]Tail, len(byChannel))
	for c, d := range byChannel {
		ch[c] = tailOf(d)
	}
	secs := make([]SecondTail, 0, len(bySecond))
	for k, d := range bySecond {
		secs = append(secs, SecondTail{Second: k.sec, Channel: k.channel, Tail: tailOf(d)})
	}
	slices.SortFunc(secs, func(a, b SecondTail) int {
		return cmp.Or(cmp.Compare(a.Second, b.Second), cmp.Compare(a.Channel, b.Channel))
	})
	return ch, secs
}

// channelP99s is " push 12.3 ms, pull 4.5 ms": the p99 of each channel that
// had deliveries, push first.
func channelP99s(by map[string]Tail) string {
	names := make([]string, 0, len(by))
	for c := range by {
		names = append(names, c)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(b, a) }) // push before pull
	out := ""
	for i, c := range names {
		if i > 0 {
			out += ","
		}
		out += fmt.Sprintf(" %s %.1f ms", c, by[c].P99Ms)
	}
	return out
}
