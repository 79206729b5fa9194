// Package connlimit keeps a protocol server's open connections: it bounds
// them in total and per client address, and closes them all at shutdown.
// SMTP and IMAP share it so that both count clients the same way.
package connlimit

import (
	"net"
	"sync"
)

// Reasons a connection is refused, used as metric labels.
const (
	Shutdown = "shutdown"
	Total    = "total"
	PerIP    = "per_ip"
)

// Set is the open connections of one server. Zero limits mean no limit.
type Set struct {
	maxTotal, maxPerIP int

	mu     sync.Mutex
	conns  map[net.Conn]string // connection -> its address key
	perIP  map[string]int
	closed bool
}

// New returns a set admitting at most maxTotal connections, at most
// maxPerIP of them from one address key.
func New(maxTotal, maxPerIP int) *Set {
	return &Set{maxTotal: maxTotal, maxPerIP: maxPerIP, conns: map[net.Conn]string{}, perIP: map[string]int{}}
}

// Key groups a client address: an IPv4 address is itself, IPv6 clients are
// grouped by /64, the usual allocation to one host or site (RFC 6177), so
// that one client cannot step around the limit through its own prefix.
func Key(ip net.IP) string {
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	if ip == nil {
		return "unknown"
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// RemoteIP is the IP of c's peer, nil when it has none (a pipe).
func RemoteIP(c net.Conn) net.IP {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		return a.IP
	case nil:
		return nil
	default:
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return nil
		}
		return net.ParseIP(host)
	}
}

// Admit records c under its address key and returns "", or refuses it and
// returns the reason (Shutdown, Total or PerIP) without recording it.
func (s *Set) Admit(c net.Conn) string {
	key := Key(RemoteIP(c))
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return Shutdown
	case s.maxTotal > 0 && len(s.conns) >= s.maxTotal:
		return Total
	case s.maxPerIP > 0 && s.perIP[key] >= s.maxPerIP:
		return PerIP
	}
	s.conns[c] = key
	s.perIP[key]++
	return ""
}

// Release forgets c; releasing a connection not admitted does nothing.
func (s *Set) Release(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, ok := s.conns[c]
	if !ok {
		return
	}
	delete(s.conns, c)
	if s.perIP[key]--; s.perIP[key] <= 0 {
		delete(s.perIP, key)
	}
}

// Len is the number of admitted connections.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close refuses every later connection and closes the admitted ones (a
// goodbye line here could interleave with a reply or a TLS record).
func (s *Set) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
}
