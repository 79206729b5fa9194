package smtp

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// cachingResolver keeps answers, and "no such name" answers, for a short
// fixed time: senders repeat, and each lookup otherwise costs a socket
// and a round trip (about a quarter of the CPU of an MX delivery in
// BenchmarkMXParallel). Temporary failures are never cached.
type cachingResolver struct {
	r   Resolver
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[string]cached
}

type cached struct {
	v       any
	err     error
	expires time.Time
}

func newCachingResolver(r Resolver, ttl time.Duration, max int) *cachingResolver {
	return &cachingResolver{r: r, ttl: ttl, max: max, m: map[string]cached{}}
}

func lookup[T any](c *cachingResolver, key string, f func() (T, error)) (T, error) {
	now := time.Now()
	c.mu.Lock()
	if e, ok := c.m[key]; ok && now.Before(e.expires) {
		c.mu.Unlock()
		v, _ := e.v.(T)
		return v, e.err
	}
	c.mu.Unlock()
	v, err := f()
	var de *net.DNSError
	if err == nil || errors.As(err, &de) && de.IsNotFound {
		c.mu.Lock()
		if len(c.m) >= c.max {
			for k, e := range c.m {
				if now.After(e.expires) || len(c.m) >= c.max {
					delete(c.m, k)
				}
			}
		}
		c.m[key] = cached{v: v, err: err, expires: now.Add(c.ttl)}
		c.mu.Unlock()
	}
	return v, err
}

func (c *cachingResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return lookup(c, "txt\x00"+name, func() ([]string, error) { return c.r.LookupTXT(ctx, name) })
}

func (c *cachingResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return lookup(c, "mx\x00"+name, func() ([]*net.MX, error) { return c.r.LookupMX(ctx, name) })
}

func (c *cachingResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return lookup(c, "ip\x00"+host, func() ([]net.IPAddr, error) { return c.r.LookupIPAddr(ctx, host) })
}

func (c *cachingResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return lookup(c, "ptr\x00"+addr, func() ([]string, error) { return c.r.LookupAddr(ctx, addr) })
}
