// Package testdns is a tiny authoritative DNS responder on 127.0.0.1 for
// tests and benchmarks: TXT, A and AAAA records from maps, NXDOMAIN for
// unknown names (RFC 1035 §4.1). It answers over UDP only.
package testdns

import (
	"encoding/binary"
	"net"
	"strings"
	"sync"
)

// Server answers queries from its record maps.
type Server struct {
	Addr string // host:port to point resolvers at
	pc   net.PacketConn

	mu  sync.RWMutex
	txt map[string][]string
	ip  map[string][]net.IP
}

// Start listens on a free UDP port of 127.0.0.1.
func Start() (*Server, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: pc.LocalAddr().String(), pc: pc, txt: map[string][]string{}, ip: map[string][]net.IP{}}
	go s.serve()
	return s, nil
}

func canon(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// SetTXT sets the TXT records of name.
func (s *Server) SetTXT(name string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txt[canon(name)] = values
}

// SetIP sets the A/AAAA records of name.
func (s *Server) SetIP(name string, ips ...net.IP) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ip[canon(name)] = ips
}

// Close stops the server.
func (s *Server) Close() error { return s.pc.Close() }

const (
	typeA    = 1
	typeTXT  = 16
	typeAAAA = 28
)

func (s *Server) serve() {
	buf := make([]byte, 1500)
	for {
		n, addr, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := s.answer(buf[:n]); resp != nil {
			s.pc.WriteTo(resp, addr)
		}
	}
}

// answer builds the response to one query, or nil if it is malformed.
func (s *Server) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	// QNAME: labels up to the root label.
	i := 12
	var labels []string
	for {
		if i >= len(q) {
			return nil
		}
		l := int(q[i])
		if l == 0 {
			i++
			break
		}
		if l > 63 || i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i : i+2])
	question := q[12 : i+4]
	name := canon(strings.Join(labels, "."))

	s.mu.RLock()
	txts, hasTXT := s.txt[name]
	ips, hasIP := s.ip[name]
	s.mu.RUnlock()

	var answers [][]byte
	switch qtype {
	case typeTXT:
		for _, t := range txts {
			var rd []byte
			for len(t) > 255 {
				rd = append(append(rd, 255), t[:255]...)
				t = t[255:]
			}
			rd = append(append(rd, byte(len(t))), t...)
			answers = append(answers, rr(typeTXT, rd))
		}
	case typeA:
		for _, ip := range ips {
			if v4 := ip.To4(); v4 != nil {
				answers = append(answers, rr(typeA, v4))
			}
		}
	case typeAAAA:
		for _, ip := range ips {
			if ip.To4() == nil {
				answers = append(answers, rr(typeAAAA, ip.To16()))
			}
		}
	}
	rcode := uint16(0)
	if !hasTXT && !hasIP {
		rcode = 3 // NXDOMAIN
	}
	out := make([]byte, 12, 512)
	copy(out[0:2], q[0:2])                                     // ID
	flags := uint16(0x8400) | uint16(q[2]&0x01)<<8 | rcode     // QR, AA, RD copied
	binary.BigEndian.PutUint16(out[2:4], flags|0x0080)         // RA
	binary.BigEndian.PutUint16(out[4:6], 1)                    // QDCOUNT
	binary.BigEndian.PutUint16(out[6:8], uint16(len(answers))) // ANCOUNT
	out = append(out, question...)
	for _, a := range answers {
		out = append(out, a...)
	}
	return out
}

// rr is one answer whose owner is the question name (pointer to offset 12).
func rr(typ uint16, rdata []byte) []byte {
	b := []byte{0xC0, 12, 0, 0, 0, 1, 0, 0, 0, 60, 0, 0}
	binary.BigEndian.PutUint16(b[2:4], typ)
	binary.BigEndian.PutUint16(b[10:12], uint16(len(rdata)))
	return append(b, rdata...)
}
