// Package smtp serves SMTP for inbound mail (MX, RFC 5321), message
// submission (RFC 6409, with STARTTLS RFC 3207 or implicit TLS RFC 8314)
// and LMTP (RFC 2033), and delivers into the store.
//
// The protocol is implemented here rather than with go-smtp's server: that
// server drops the quotes of quoted local-parts ("a@b"@example.test
// becomes a@b@example.test), accepts '@' inside domains, and keeps the
// connection open after an unparsable BDAT size, so the chunk that follows
// would be read as commands. See docs/adr/0006-smtp.md.
package smtp

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-mail/stoa/antispam"
	"github.com/stoa-mail/stoa/frontend/connlimit"
	"github.com/stoa-mail/stoa/storage"
)

// Mode is what a listener serves.
type Mode int

const (
	MX         Mode = iota // inbound from the Internet: no AUTH, never relays
	Submission             // authenticated clients (587 STARTTLS, 465 implicit TLS)
	LMTP                   // local delivery behind another MTA
)

func (m Mode) String() string {
	switch m {
	case Submission:
		return "submission"
	case LMTP:
		return "lmtp"
	}
	return "mx"
}

// Config holds the limits and policies. Zero values take defaults.
type Config struct {
	Hostname             string
	MaxMessageSize       int64 // bytes, advertised with SIZE (RFC 1870)
	MaxRecipients        int
	MaxLineLength        int // bytes without CRLF, commands and message lines
	MaxHeaders           int // top-level header fields
	MaxMIMEDepth         int
	MaxMIMEParts         int
	MaxConns             int // open connections per service: MX, submission (587 and 465), LMTP (default 10,000)
	MaxConnsPerIP        int // per service from one IPv4 address or IPv6 /64, LMTP excepted (0: no limit)
	ReadTimeout          time.Duration
	TLSHandshakeTimeout  time.Duration // port 465 and STARTTLS, in all (default 30 s): a hello dripped byte by byte renews ReadTimeout
	WriteTimeout         time.Duration
	AllowInsecureAuth    bool // development only: AUTH without TLS
	RateLimitPerHour     int  // submitted messages per account and hour (0: none)
	AuthFailuresPerIP    int  // failed AUTH per client IP per window
	AuthFailuresPerLogin int  // failed AUTH per (client IP, login) per window
	AuthFailureWindow    time.Duration
	SkipSenderAuth       bool          // no SPF/DKIM/DMARC on MX (tests, benchmarks)
	DNSTimeout           time.Duration // budget for SPF+DKIM+DMARC lookups per message
	DNSCacheTTL          time.Duration // in-process DNS answer cache (0: none)
}

func (c *Config) defaults() {
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = 50 << 20
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 10000
	}
	if c.MaxRecipients <= 0 {
		c.MaxRecipients = 100
	}
	if c.MaxLineLength <= 0 {
		c.MaxLineLength = 4096
	}
	if c.MaxLineLength < 998 {
		c.MaxLineLength = 998 // RFC 5322 §2.1.1 must be accepted
	}
	if c.MaxHeaders <= 0 {
		c.MaxHeaders = 1000
	}
	if c.MaxMIMEDepth <= 0 {
		c.MaxMIMEDepth = 20
	}
	if c.MaxMIMEParts <= 0 {
		c.MaxMIMEParts = 1000
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 5 * time.Minute // RFC 5321 §4.5.3.2.7 (server timeout)
	}
	if c.TLSHandshakeTimeout <= 0 {
		c.TLSHandshakeTimeout = 30 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 5 * time.Minute
	}
	if c.AuthFailuresPerIP <= 0 {
		c.AuthFailuresPerIP = 30
	}
	if c.AuthFailuresPerLogin <= 0 {
		c.AuthFailuresPerLogin = 5
	}
	if c.AuthFailureWindow <= 0 {
		c.AuthFailureWindow = 15 * time.Minute
	}
	if c.DNSTimeout <= 0 {
		c.DNSTimeout = 10 * time.Second
	}
}

// Options are the server's collaborators.
type Options struct {
	Store    *storage.Store
	TLS      *tls.Config // nil: no STARTTLS
	Log      *slog.Logger
	Registry prometheus.Registerer // nil: metrics are not exported
	Resolver Resolver              // nil: net.DefaultResolver
	Checker  antispam.Checker      // nil: antispam.None
}

// Server serves any number of listeners.
type Server struct {
	cfg      Config
	store    *storage.Store
	tls      *tls.Config
	log      *slog.Logger
	resolver Resolver
	checker  antispam.Checker
	m        *metrics
	lim      *limiter
	conns    [LMTP + 1]*connlimit.Set // per Mode: a flood on MX leaves submission and LMTP alone

	mu        sync.Mutex
	listeners []net.Listener
	closed    bool
	wg        sync.WaitGroup
}

// New returns a server.
func New(cfg Config, o Options) (*Server, error) {
	cfg.defaults()
	if o.Store == nil {
		return nil, errors.New("smtp: no store")
	}
	s := &Server{cfg: cfg, store: o.Store, tls: o.TLS, log: o.Log, resolver: o.Resolver, checker: o.Checker,
		lim: newLimiter()}
	// LMTP has no per-address limit: its clients are the site's own MTAs,
	// many parallel deliveries from few addresses.
	s.conns = [...]*connlimit.Set{MX: connlimit.New(cfg.MaxConns, cfg.MaxConnsPerIP),
		Submission: connlimit.New(cfg.MaxConns, cfg.MaxConnsPerIP), LMTP: connlimit.New(cfg.MaxConns, 0)}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.resolver == nil {
		s.resolver = net.DefaultResolver
	}
	if cfg.DNSCacheTTL > 0 {
		s.resolver = newCachingResolver(s.resolver, cfg.DNSCacheTTL, 100_000)
	}
	if s.checker == nil {
		s.checker = antispam.None
	}
	m, err := newMetrics(o.Registry)
	if err != nil {
		return nil, err
	}
	s.m = m
	return s, nil
}

// Serve accepts connections on ln until Close. implicitTLS wraps every
// connection in TLS first (submissions on 465, RFC 8314 §3.3).
func (s *Server) Serve(ln net.Listener, mode Mode, implicitTLS bool) error {
	if implicitTLS && s.tls == nil {
		return errors.New("smtp: implicit TLS without certificate")
	}
	if mode < MX || mode > LMTP {
		return fmt.Errorf("smtp: unknown mode %d", mode)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if reason := s.conns[mode].Admit(nc); reason != "" {
			s.refuse(nc, mode, implicitTLS, reason)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.conns[mode].Release(nc)
			s.serveConn(nc, mode, implicitTLS)
		}()
	}
}

// refuse answers a connection over a limit with 421 (RFC 5321 §3.8) and
// closes it; on implicit TLS, where no plain text may be sent, it only closes.
func (s *Server) refuse(nc net.Conn, mode Mode, implicitTLS bool, reason string) {
	defer nc.Close()
	if reason == connlimit.Shutdown {
		return
	}
	s.m.rejections.WithLabelValues(mode.String(), "conns_"+reason).Inc()
	if implicitTLS {
		return
	}
	nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if reason == connlimit.PerIP {
		fmt.Fprintf(nc, "421 4.7.0 %s too many connections from your address\r\n", s.cfg.Hostname)
	} else {
		fmt.Fprintf(nc, "421 4.3.2 %s too many connections, try again later\r\n", s.cfg.Hostname)
	}
}

// Close stops the listeners, closes the sessions and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.wg.Wait()
	return nil
}

// timeoutConn refreshes the deadline before every read and write, so the
// timeouts bound idleness (RFC 5321 §4.5.3.2), not whole transfers.
type timeoutConn struct {
	net.Conn
	rt, wt time.Duration
}

func (c *timeoutConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.rt))
	return c.Conn.Read(p)
}

func (c *timeoutConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.wt))
	return c.Conn.Write(p)
}

// Reply is an SMTP reply with its enhanced status code (RFC 3463); it is
// also the error type that carries a protocol meaning to the reply.
type Reply struct {
	Code int
	Enh  string // "5.1.1"; "" for none
	Text string
}

func (r *Reply) Error() string { return fmt.Sprintf("%d %s %s", r.Code, r.Enh, r.Text) }

func reply(code int, enh, format string, a ...any) *Reply {
	return &Reply{Code: code, Enh: enh, Text: fmt.Sprintf(format, a...)}
}

var errClose = errors.New("close connection")

func newSessionID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// conn is one SMTP session.
type conn struct {
	s      *Server
	mode   Mode
	nc     net.Conn
	raw    net.Conn // before TLS
	br     *bufio.Reader
	bw     *bufio.Writer
	ip     net.IP
	ipKey  string
	id     string
	log    *slog.Logger
	ctx    context.Context
	tls    bool
	tlsVer string

	helo    string
	ehlo    bool
	account *storage.Account
	tx      *txn
	nmsg    int
	errs    int
}

func (s *Server) serveConn(nc net.Conn, mode Mode, implicitTLS bool) {
	defer nc.Close()
	ip := connlimit.RemoteIP(nc)
	key := connlimit.Key(ip)
	tc := &timeoutConn{Conn: nc, rt: s.cfg.ReadTimeout, wt: s.cfg.WriteTimeout}
	s.m.sessions.WithLabelValues(mode.String()).Inc()
	s.m.active.Inc()
	defer s.m.active.Dec()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &conn{s: s, mode: mode, raw: tc, ip: ip, ipKey: key, id: newSessionID(), ctx: ctx}
	c.log = s.log.With("proto", "smtp", "mode", mode.String(), "session", c.id, "remote", nc.RemoteAddr().String())
	var rw net.Conn = tc
	if implicitTLS {
		t := tls.Server(tc, s.tls)
		hctx, hcancel := context.WithTimeout(ctx, s.cfg.TLSHandshakeTimeout)
		err := t.HandshakeContext(hctx)
		hcancel()
		if err != nil {
			c.log.Debug("tls handshake", "err", err)
			return
		}
		rw = t
		c.setTLS(t)
	}
	c.setConn(rw)
	c.log.Debug("session start")
	defer c.log.Debug("session end")
	greeting := "ESMTP"
	if mode == LMTP {
		greeting = "LMTP"
	}
	c.writeReply(&Reply{Code: 220, Text: s.cfg.Hostname + " " + greeting + " Stoa ready"})
	for {
		line, err := c.readLine()
		if r := (*Reply)(nil); errors.As(err, &r) && r != errLineTooLong {
			// The bad line was consumed whole: answer and go on.
			if c.protoError(r) != nil {
				c.bw.Flush()
				return
			}
			continue
		}
		if err != nil {
			if r := (*Reply)(nil); errors.As(err, &r) {
				c.writeReply(r)
				c.bw.Flush()
			} else if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				c.writeReply(reply(421, "4.4.2", "%s idle timeout", s.cfg.Hostname))
				c.bw.Flush()
			}
			return
		}
		if err := c.command(line); err != nil {
			c.bw.Flush()
			return
		}
	}
}

func (c *conn) setConn(rw net.Conn) {
	c.nc = rw
	// The reader holds one full line, so ErrBufferFull means "too long".
	c.br = bufio.NewReaderSize(rw, c.s.cfg.MaxLineLength+2)
	c.bw = bufio.NewWriterSize(rw, 4096)
}

func (c *conn) setTLS(t *tls.Conn) {
	c.tls = true
	switch t.ConnectionState().Version {
	case tls.VersionTLS13:
		c.tlsVer = "TLS1.3"
	case tls.VersionTLS12:
		c.tlsVer = "TLS1.2"
	default:
		c.tlsVer = "TLS"
	}
}

var errLineTooLong = reply(500, "5.5.2", "line too long (RFC 5321 §4.5.3.1)")

// flushIfIdle sends pending replies when no pipelined input is waiting
// (RFC 2920 §3.1: the server may batch replies of a pipelined group).
func (c *conn) flushIfIdle() error {
	if c.br.Buffered() == 0 {
		return c.bw.Flush()
	}
	return nil
}

// readLine reads one command line. A line longer than the limit is
// consumed and refused; CR and NUL inside a line are refused.
func (c *conn) readLine() (string, error) {
	if err := c.flushIfIdle(); err != nil {
		return "", err
	}
	line, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		for err == bufio.ErrBufferFull {
			_, err = c.br.ReadSlice('\n')
		}
		if err != nil {
			return "", err
		}
		return "", errLineTooLong
	}
	if err != nil {
		return "", err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	for _, b := range line {
		if b == '\r' || b == 0 {
			return "", reply(500, "5.5.2", "CR or NUL in command line")
		}
	}
	return string(line), nil
}

func (c *conn) writeReply(r *Reply) {
	lines := strings.Split(r.Text, "\n")
	for i, l := range lines {
		sep := " "
		if i < len(lines)-1 {
			sep = "-"
		}
		if r.Enh != "" {
			fmt.Fprintf(c.bw, "%d%s%s %s\r\n", r.Code, sep, r.Enh, l)
		} else {
			fmt.Fprintf(c.bw, "%d%s%s\r\n", r.Code, sep, l)
		}
	}
}

// protoError answers a protocol error; too many of them end the session.
func (c *conn) protoError(r *Reply) error {
	c.writeReply(r)
	c.errs++
	if c.errs >= 10 {
		c.writeReply(reply(421, "4.7.0", "%s too many errors, closing", c.s.cfg.Hostname))
		return errClose
	}
	return nil
}

func (c *conn) command(line string) error {
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	switch verb {
	case "EHLO", "HELO":
		if c.mode == LMTP {
			return c.protoError(reply(500, "5.5.1", "this is LMTP: use LHLO (RFC 2033 §4.1)"))
		}
		return c.cmdHello(arg, verb == "EHLO")
	case "LHLO":
		if c.mode != LMTP {
			return c.protoError(reply(500, "5.5.1", "LHLO is for LMTP only"))
		}
		return c.cmdHello(arg, true)
	case "STARTTLS":
		return c.cmdStartTLS(arg)
	case "AUTH":
		return c.cmdAuth(arg)
	case "MAIL":
		return c.cmdMail(arg)
	case "RCPT":
		return c.cmdRcpt(arg)
	case "DATA":
		return c.cmdData(arg)
	case "BDAT":
		return c.cmdBdat(arg)
	case "RSET":
		c.tx = nil
		c.writeReply(reply(250, "2.0.0", "reset"))
	case "NOOP":
		c.writeReply(reply(250, "2.0.0", "ok"))
	case "VRFY", "EXPN":
		// RFC 5321 §3.5.3: 252 when not verifying.
		c.writeReply(reply(252, "2.5.0", "cannot verify, send some mail"))
	case "HELP":
		c.writeReply(reply(214, "2.0.0", "see RFC 5321"))
	case "QUIT":
		c.writeReply(reply(221, "2.0.0", "%s closing", c.s.cfg.Hostname))
		return errClose
	default:
		return c.protoError(reply(500, "5.5.1", "command not recognized"))
	}
	return nil
}

// validHelo accepts a domain, an address literal or, leniently, any
// printable word without characters that could break a Received header.
func validHelo(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>;\"\\,", c) >= 0 {
			return false
		}
	}
	return true
}

func (c *conn) cmdHello(arg string, ehlo bool) error {
	name, _, _ := strings.Cut(strings.TrimSpace(arg), " ")
	if !validHelo(name) {
		return c.protoError(reply(501, "5.5.4", "domain or address literal required"))
	}
	c.helo, c.ehlo, c.tx = name, ehlo, nil // RFC 5321 §4.1.4: like RSET
	if !ehlo {
		c.writeReply(&Reply{Code: 250, Text: c.s.cfg.Hostname})
		return nil
	}
	ext := []string{c.s.cfg.Hostname, "PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
		"CHUNKING", "DSN", "SIZE " + strconv.FormatInt(c.s.cfg.MaxMessageSize, 10),
		"LIMITS RCPTMAX=" + strconv.Itoa(c.s.cfg.MaxRecipients)}
	if c.mode != LMTP && c.s.tls != nil && !c.tls {
		ext = append(ext, "STARTTLS")
	}
	if c.authAllowed() && c.account == nil {
		ext = append(ext, "AUTH PLAIN LOGIN")
	}
	c.writeReply(&Reply{Code: 250, Text: strings.Join(ext, "\n")})
	return nil
}

// authAllowed: AUTH exists only on submission, and only over TLS unless
// allow_insecure_auth (RFC 8314 §3, RFC 4954 §4).
func (c *conn) authAllowed() bool {
	return c.mode == Submission && (c.tls || c.s.cfg.AllowInsecureAuth)
}

func (c *conn) cmdStartTLS(arg string) error {
	if c.mode == LMTP || c.s.tls == nil {
		return c.protoError(reply(502, "5.5.1", "STARTTLS not available"))
	}
	if c.tls {
		return c.protoError(reply(503, "5.5.1", "already in TLS"))
	}
	if arg != "" {
		return c.protoError(reply(501, "5.5.4", "no parameters allowed"))
	}
	// Commands pipelined after STARTTLS were sent in clear text and must
	// not be executed inside TLS (RFC 3207 §4.2, CVE-2011-0411).
	if c.br.Buffered() > 0 {
		c.writeReply(reply(554, "5.5.1", "data after STARTTLS, closing"))
		return errClose
	}
	c.writeReply(reply(220, "2.0.0", "ready to start TLS"))
	if err := c.bw.Flush(); err != nil {
		return err
	}
	t := tls.Server(c.raw, c.s.tls)
	hctx, hcancel := context.WithTimeout(c.ctx, c.s.cfg.TLSHandshakeTimeout)
	defer hcancel()
	if err := t.HandshakeContext(hctx); err != nil {
		c.log.Debug("starttls handshake", "err", err)
		return errClose
	}
	c.setConn(t)
	c.setTLS(t)
	// RFC 3207 §4.2: forget everything learnt before TLS.
	c.helo, c.ehlo, c.tx, c.account = "", false, nil, nil
	return nil
}

// discard consumes n bytes of input.
func (c *conn) discard(n int64) error {
	_, err := io.CopyN(io.Discard, c.br, n)
	return err
}
