// Package imap is Stoa's IMAP4rev2/IMAP4rev1 server (RFC 9051, RFC 3501)
// with CONDSTORE and QRESYNC (RFC 7162). Parsing lives in ./proto; this
// package dispatches commands onto storage.Store and writes responses.
package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-mail/stoa/frontend/connlimit"
	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/mailmeta"
)

// Config holds the server's limits. Zero values take defaults.
type Config struct {
	Hostname          string
	AllowInsecureAuth bool  // LOGIN / AUTHENTICATE without TLS (development)
	MaxLiteral        int64 // bytes of one literal (default 50 MiB)
	// MaxLiteralBeforeLogin bounds literals (and commands) before
	// authentication, so that unauthenticated clients cannot make the
	// server hold MaxLiteral each (default 64 KiB).
	MaxLiteralBeforeLogin int64
	MaxLineLength         int           // bytes of one command line (default 64 KiB)
	MaxConns              int           // connections in total (default 20,000)
	MaxConnsPerIP         int           // connections per client IP (default 200)
	IdleTimeout           time.Duration // inactivity before the connection is closed (default 30 min, RFC 9051 §5.4)
	TLSHandshakeTimeout   time.Duration // port 993 and STARTTLS (default 30 s)
	CommandTimeout        time.Duration // longest a command (but IDLE) may work, e.g. a SEARCH scan; then NO [LIMIT] (default 10 min)
	PollInterval          time.Duration // polling for changes made by other nodes (default 2 s)
	KeepAlive             time.Duration // "* OK" during IDLE (default 2 min)
	MaxAuthFailures       int           // failed logins before disconnect (default 3)
	AuthFailureDelay      time.Duration // delay after each failed login (default 1 s, doubled each time)
	MaxSearchKeyLen       int           // bytes of one SEARCH text key's value (default 1 KiB)
	MaxSearchTextKeys     int           // text keys (BODY, TEXT, FROM…) in one SEARCH (default 64)
	MaxSearchTerms        int           // words in all text keys of one SEARCH (default 256)
}

func (c *Config) defaults() {
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.MaxLiteral <= 0 {
		c.MaxLiteral = 50 << 20
	}
	if c.MaxLiteralBeforeLogin <= 0 {
		c.MaxLiteralBeforeLogin = 64 << 10
	}
	if c.MaxSearchKeyLen <= 0 {
		c.MaxSearchKeyLen = 1 << 10
	}
	if c.MaxSearchTextKeys <= 0 {
		c.MaxSearchTextKeys = 64
	}
	if c.TLSHandshakeTimeout <= 0 {
		c.TLSHandshakeTimeout = 30 * time.Second
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 10 * time.Minute
	}
	if c.MaxSearchTerms <= 0 {
		c.MaxSearchTerms = 256
	}
	if c.MaxLineLength <= 0 {
		c.MaxLineLength = 64 << 10
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 20000
	}
	if c.MaxConnsPerIP <= 0 {
		c.MaxConnsPerIP = 200
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Minute
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 2 * time.Second
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 2 * time.Minute
	}
	if c.MaxAuthFailures <= 0 {
		c.MaxAuthFailures = 3
	}
	if c.AuthFailureDelay <= 0 {
		c.AuthFailureDelay = time.Second
	}
}

// TextQuery is one text search key for a Searcher (RFC 9051 §6.4.4).
type TextQuery struct {
	Field  string // BODY, TEXT, SUBJECT, FROM, TO, CC, BCC or HEADER
	Header string // header name for HEADER
	Value  string
}

// Searcher answers text search keys from a full-text index. ok=false means
// it cannot answer (e.g. the index lags): the server scans instead.
type Searcher interface {
	Search(ctx context.Context, account string, mailbox uint32, q TextQuery) (uids []uint32, ok bool, err error)
}

// Matcher, when the Searcher implements it, evaluates text keys during a
// scan (the index could not answer) with the index's semantics, so that a
// SEARCH gives the same answer on either path (ADR 0008: words, not
// substrings). Prepare is called once per scanned message.
type Matcher interface {
	Prepare(account string, e *storage.Email, meta *mailmeta.Meta, raw []byte) func(TextQuery) bool
}

type metrics struct {
	sessions    prometheus.Gauge
	sessionsTot prometheus.Counter
	commands    *prometheus.CounterVec
	errors      *prometheus.CounterVec
	authFail    prometheus.Counter
	refused     *prometheus.CounterVec
}

// Server serves IMAP on any number of listeners.
type Server struct {
	cfg      Config
	store    *storage.Store
	tls      *tls.Config
	log      *slog.Logger
	Searcher Searcher // optional full-text index
	m        metrics

	conns *connlimit.Set

	mu     sync.Mutex
	lns    []net.Listener
	closed bool
	wg     sync.WaitGroup
}

// New returns a server. reg may be nil.
func New(store *storage.Store, tlsCfg *tls.Config, cfg Config, log *slog.Logger, reg prometheus.Registerer) *Server {
	cfg.defaults()
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, store: store, tls: tlsCfg, log: log.With("role", "imap"),
		conns: connlimit.New(cfg.MaxConns, cfg.MaxConnsPerIP)}
	s.m = metrics{
		sessions:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "stoa_imap_sessions", Help: "Open IMAP connections."}),
		sessionsTot: prometheus.NewCounter(prometheus.CounterOpts{Name: "stoa_imap_sessions_total", Help: "IMAP connections accepted."}),
		commands:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoa_imap_commands_total", Help: "IMAP commands by name."}, []string{"command"}),
		errors:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoa_imap_command_errors_total", Help: "IMAP commands answered NO or BAD."}, []string{"command", "status"}),
		authFail:    prometheus.NewCounter(prometheus.CounterOpts{Name: "stoa_imap_auth_failures_total", Help: "Failed IMAP logins."}),
		refused:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoa_imap_refused_connections_total", Help: "Connections refused by limits."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(s.m.sessions, s.m.sessionsTot, s.m.commands, s.m.errors, s.m.authFail, s.m.refused)
	}
	return s
}

// Serve accepts connections until ln is closed. implicitTLS wraps each
// connection in TLS at once (port 993, RFC 8314).
func (s *Server) Serve(ln net.Listener, implicitTLS bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if reason := s.conns.Admit(c); reason != "" {
			s.refuse(c, implicitTLS, reason)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.m.sessions.Inc()
			s.m.sessionsTot.Inc()
			defer func() { s.conns.Release(c); s.m.sessions.Dec() }()
			conn := c
			if implicitTLS {
				// The handshake has its own deadline: a client that never
				// sends its hello must not hold its place until shutdown.
				tc := tls.Server(c, s.tls)
				c.SetDeadline(time.Now().Add(s.cfg.TLSHandshakeTimeout))
				if err := tc.Handshake(); err != nil {
					c.Close()
					return
				}
				c.SetDeadline(time.Time{})
				conn = tc
			}
			newSession(s, conn, implicitTLS).serve()
		}()
	}
}

// refuse closes a connection over a limit, with BYE [UNAVAILABLE] (RFC 9051
// §7.1.5) where it may be sent in plain text: not on implicit TLS, where the
// client expects a TLS hello.
func (s *Server) refuse(c net.Conn, implicitTLS bool, reason string) {
	defer c.Close()
	if reason == connlimit.Shutdown {
		return
	}
	s.m.refused.WithLabelValues(reason).Inc()
	if implicitTLS {
		return
	}
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("* BYE [UNAVAILABLE] Too many connections\r\n"))
}

// Close stops the listeners and closes every connection.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, ln := range s.lns {
		ln.Close()
	}
	s.mu.Unlock()
	s.conns.Close()
	s.wg.Wait()
	return nil
}
