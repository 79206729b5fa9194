package connlimit

import (
	"net"
	"testing"
)

type addrConn struct {
	net.Conn
	addr   net.Addr
	closed bool
}

func (c *addrConn) RemoteAddr() net.Addr { return c.addr }
func (c *addrConn) Close() error         { c.closed = true; return nil }

func conn(ip string) *addrConn {
	return &addrConn{addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
}

func TestPerAddress(t *testing.T) {
	s := New(0, 2)
	a1, a2, a3 := conn("192.0.2.1"), conn("192.0.2.1"), conn("192.0.2.1")
	if s.Admit(a1) != "" || s.Admit(a2) != "" {
		t.Fatal("first two refused")
	}
	if r := s.Admit(a3); r != PerIP {
		t.Fatalf("third from one address: %q", r)
	}
	if s.Admit(conn("192.0.2.2")) != "" {
		t.Fatal("another address refused")
	}
	s.Release(a3) // never admitted: must not free a1's or a2's place
	if r := s.Admit(a3); r != PerIP {
		t.Fatalf("release of a refused connection freed a place: %q", r)
	}
	s.Release(a1)
	if s.Admit(a3) != "" {
		t.Fatal("place not freed by Release")
	}
}

// One host holds a whole IPv6 /64: its addresses share one count.
func TestIPv6GroupedBySlash64(t *testing.T) {
	s := New(0, 2)
	if s.Admit(conn("2001:db8:1:2::1")) != "" || s.Admit(conn("2001:db8:1:2:ffff::9")) != "" {
		t.Fatal("refused below the limit")
	}
	if r := s.Admit(conn("2001:db8:1:2:aaaa:bbbb:cccc:dddd")); r != PerIP {
		t.Fatalf("third address of one /64: %q", r)
	}
	if s.Admit(conn("2001:db8:1:3::1")) != "" {
		t.Fatal("next /64 refused")
	}
	if k := Key(net.ParseIP("::ffff:192.0.2.7")); k != "192.0.2.7" {
		t.Fatalf("IPv4-mapped key %q", k)
	}
}

func TestTotalAndClose(t *testing.T) {
	s := New(2, 0)
	a, b := conn("192.0.2.1"), conn("198.51.100.1")
	s.Admit(a)
	s.Admit(b)
	if r := s.Admit(conn("203.0.113.1")); r != Total {
		t.Fatalf("over total: %q", r)
	}
	if s.Len() != 2 {
		t.Fatalf("Len %d", s.Len())
	}
	s.Close()
	if !a.closed || !b.closed {
		t.Fatal("Close left a connection open")
	}
	s.Release(a)
	if r := s.Admit(conn("203.0.113.1")); r != Shutdown {
		t.Fatalf("after Close: %q", r)
	}
}

func TestPipeHasNoAddress(t *testing.T) {
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if ip := RemoteIP(p); ip != nil {
		t.Fatalf("pipe ip %v", ip)
	}
	s := New(0, 1)
	if s.Admit(p) != "" || s.Admit(q) != PerIP {
		t.Fatal("connections without an address share one count")
	}
}
