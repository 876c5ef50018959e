package delivery

import (
	"sync"
	"time"
)

// Breaker is a circuit breaker per endpoint. After Threshold consecutive
// failed attempts the circuit opens for a cool-down that doubles each time it
// re-opens (capped); while it is open no attempt is made and the deliveries
// waiting for that endpoint are deferred in the ledger, so a dead endpoint
// costs the others nothing and wastes none of its own attempts. When the
// cool-down ends one probe goes through (half-open): success closes the
// circuit, failure opens it again.
type Breaker struct {
	Threshold   int           // consecutive failures that open the circuit; default 5
	Cooldown    time.Duration // first open period; default 5s
	MaxCooldown time.Duration // cap; default 5m
	Now         func() time.Time

	mu sync.Mutex // guards m
	m  map[string]*circuit
}

type circuit struct {
	fails     int       // consecutive failures
	opens     int       // consecutive openings (for the cool-down)
	openUntil time.Time // zero: closed
	probing   bool      // a half-open probe is in flight
}

func (b *Breaker) init() {
	if b.Threshold <= 0 {
		b.Threshold = 5
	}
	if b.Cooldown <= 0 {
		b.Cooldown = 5 * time.Second
	}
	if b.MaxCooldown <= 0 {
		b.MaxCooldown = 5 * time.Minute
	}
	if b.Now == nil {
		b.Now = time.Now
	}
	if b.m == nil {
		b.m = map[string]*circuit{}
	}
}

// Allow reports whether an attempt at endpoint may be made now; if not, it
// returns when the circuit will let a probe through.
func (b *Breaker) Allow(endpoint string) (bool, time.Time) {
	ok, _, until := b.allow(endpoint)
	return ok, until
}

// allow is Allow that also says whether the attempt is a half-open probe.
func (b *Breaker) allow(endpoint string) (ok, probe bool, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	c := b.m[endpoint]
	if c == nil || c.openUntil.IsZero() {
		return true, false, time.Time{}
	}
	now := b.Now()
	if now.Before(c.openUntil) {
		return false, false, c.openUntil
	}
	if c.probing { // half-open: one probe at a time
		return false, false, now.Add(b.Cooldown)
	}
	c.probing = true
	return true, true, time.Time{}
}

// Release gives back a probe that made no attempt (the delivery was not due).
func (b *Breaker) Release(endpoint string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.m[endpoint]; c != nil {
		c.probing = false
	}
}

// Success records an answer from the endpoint (delivered, or refused for
// good: either way it is alive). The circuit closes.
func (b *Breaker) Success(endpoint string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, endpoint)
}

// Failure records a failed attempt (network error, timeout, 408/429/5xx).
func (b *Breaker) Failure(endpoint string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	c := b.m[endpoint]
	if c == nil {
		c = &circuit{}
		b.m[endpoint] = c
	}
	c.fails++
	wasProbe := c.probing
	c.probing = false
	if c.fails < b.Threshold && !wasProbe {
		return
	}
	c.opens++
	d := b.Cooldown
	for i := 1; i < c.opens && d < b.MaxCooldown; i++ {
		d *= 2
	}
	c.openUntil = b.Now().Add(min(d, b.MaxCooldown))
}

// State returns "closed", "open" or "half-open" (for tests and metrics).
func (b *Breaker) State(endpoint string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	c := b.m[endpoint]
	switch {
	case c == nil || c.openUntil.IsZero():
		return "closed"
	case b.Now().Before(c.openUntil):
		return "open"
	default:
		return "half-open"
	}
}
