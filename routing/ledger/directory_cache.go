package ledger

import (
	"context"
	"slices"
	"sync"
	"time"
)

// DefaultDirectoryTTL is how long Organ keeps an entry it read.
//
// The directory is read on every submission (the sender and each recipient)
// and by the router and delivery stages, and changes rarely. Organ therefore
// caches what it found. A change made through this Ledger (UpsertOrgan,
// UpsertAxisOrgan, SetLimits) empties the cache at once; a change made by
// another process (another hubd, hubctl, SQL) is seen within the TTL: an organ
// deactivated elsewhere stops being accepted here at most DirectoryTTL later.
// Unknown codes are not cached, so an organ added elsewhere may still take up
// to the TTL only if it was looked up as something else before.
//
// The principals that API credentials authenticate (every request) are
// cached the same way: a credential that authenticated is answered from the
// cache for up to the TTL, an unknown one is always looked up, AddPrincipal
// and every invalidation empty the cache.
const DefaultDirectoryTTL = 2 * time.Second

// maxDirectoryEntries bounds the cache; past it the cache starts over.
const maxDirectoryEntries = 10000

// directoryCache maps looked-up codes (current or old) to active organs.
type directoryCache struct {
	ttl time.Duration // <= 0: no caching

	mu      sync.Mutex // guards entries, principals and gen
	entries map[string]cached[Organ]
	// principals maps a credential (column and hash, see principalKey) to
	// the principal it authenticated, under the same TTL and invalidations.
	principals map[string]cached[Principal]
	gen        uint64 // bumped by every invalidation
}

// cached is one entry of the cache and when it goes stale.
type cached[V any] struct {
	v       V
	expires time.Time
}

func newDirectoryCache(ttl time.Duration) *directoryCache {
	if ttl == 0 {
		ttl = DefaultDirectoryTTL
	}
	return &directoryCache{ttl: ttl, entries: map[string]cached[Organ]{}, principals: map[string]cached[Principal]{}}
}

// cacheGet returns m's fresh entry for key, and the generation to pass to
// cachePut otherwise.
func cacheGet[V any](c *directoryCache, m map[string]cached[V], key string, now time.Time) (V, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := m[key]
	if !ok || c.ttl <= 0 || !now.Before(e.expires) {
		var zero V
		return zero, false, c.gen
	}
	return e.v, true, c.gen
}

// cachePut stores v unless the cache was invalidated since gen was read: a
// lookup that raced with a change must not keep the old row.
func cachePut[V any](c *directoryCache, m map[string]cached[V], key string, v V, gen uint64, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(m) >= maxDirectoryEntries {
		clear(m)
	}
	m[key] = cached[V]{v: v, expires: now.Add(c.ttl)}
}

// getPrincipal is cacheGet for a credential.
func (c *directoryCache) getPrincipal(key string, now time.Time) (Principal, bool, uint64) {
	return cacheGet(c, c.principals, key, now)
}

// putPrincipal is cachePut for a credential that authenticated p.
func (c *directoryCache) putPrincipal(key string, p Principal, gen uint64, now time.Time) {
	cachePut(c, c.principals, key, p, gen, now)
}

// get is cacheGet for an organ code; the organ returned is a copy.
func (c *directoryCache) get(code string, now time.Time) (Organ, bool, uint64) {
	o, ok, gen := cacheGet(c, c.entries, code, now)
	if ok {
		o = cloneOrgan(o)
	}
	return o, ok, gen
}

// put is cachePut for an organ code; it keeps a copy of o.
func (c *directoryCache) put(code string, o Organ, gen uint64, now time.Time) {
	cachePut(c, c.entries, code, cloneOrgan(o), gen, now)
}

// invalidate empties the cache (old codes make per-code invalidation unsafe).
func (c *directoryCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
	clear(c.principals)
}

func cloneOrgan(o Organ) Organ {
	o.OldCodes = slices.Clone(o.OldCodes)
	o.CertFingerprints = slices.Clone(o.CertFingerprints)
	return o
}

// InvalidateDirectory drops what Organ has cached, for callers that change
// the organs table by other means than this Ledger.
func (l *Ledger) InvalidateDirectory() { l.dir.invalidate() }

// cachedOrganLookup is Organ through the cache.
func (l *Ledger) cachedOrganLookup(ctx context.Context, code string) (Organ, error) {
	now := time.Now()
	o, ok, gen := l.dir.get(code, now)
	if ok {
		return o, nil
	}
	o, err := l.lookupOrgan(ctx, code)
	if err != nil {
		return o, err
	}
	l.dir.put(code, o, gen, now)
	return o, nil
}

// directoryChannel is the NOTIFY channel of migration 0008.
const directoryChannel = "lt_directory"

// WatchDirectory listens for directory changes made by any process (the
// organs trigger of migration 0008) and empties the cache on each, so that a
// change is seen here within milliseconds rather than DirectoryTTL. It holds
// one connection of the pool, reconnects after a failure, and returns nil
// when ctx ends. Without it the TTL alone bounds staleness.
func (l *Ledger) WatchDirectory(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := l.watchDirectoryOnce(ctx); err != nil && ctx.Err() == nil {
			l.log.WarnContext(ctx, "ledger: directory watch interrupted; retrying", "error", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

func (l *Ledger) watchDirectoryOnce(ctx context.Context) error {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return classify(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+directoryChannel); err != nil {
		conn.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck // discard a broken connection
		return classify(err)
	}
	l.dir.invalidate() // whatever changed before we listened
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			// A connection interrupted mid-wait must not go back to the
			// pool still listening.
			conn.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck // discarded
			l.dir.invalidate()
			return classify(err)
		}
		l.dir.invalidate()
	}
}
