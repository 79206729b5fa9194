package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stoa-mail/stoa/frontend/internal/testtls"
	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/embedded"
)

// env is a server on every mode over an embedded store.
type env struct {
	t     *testing.T
	st    *storage.Store
	srv   *Server
	addr  map[string]string // mx, submission, submissions, lmtp
	alice storage.Account
	bob   storage.Account
}

func newEnv(t *testing.T, cfg Config, o Options) *env {
	t.Helper()
	return newEnvOn(t, t, cfg, o, true)
}

// newEnvSync is newEnv with fsync, for benchmarks.
func newEnvSync(tb testing.TB, t *testing.T, cfg Config, o Options) *env {
	return newEnvOn(tb, t, cfg, o, os.Getenv("SMTP_BENCH_NOSYNC") != "")
}

func newEnvOn(tb testing.TB, t *testing.T, cfg Config, o Options, noSync bool) *env {
	eng, err := embedded.Open(tb.TempDir(), embedded.Options{NoSync: noSync})
	if err != nil {
		t.Fatal(err)
	}
	st := storage.New(eng, storage.Config{PasswordCost: storage.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}})
	tb.Cleanup(func() { st.Close() })
	ctx := context.Background()
	e := &env{t: t, st: st, addr: map[string]string{}}
	if e.alice, err = st.AddAccount(ctx, "alice@local.test", "alice-pw", storage.AccountOptions{}); err != nil {
		t.Fatal(err)
	}
	if e.bob, err = st.AddAccount(ctx, "bob@local.test", "bob-pw", storage.AccountOptions{}); err != nil {
		t.Fatal(err)
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "mx.local.test"
	}
	cfg.SkipSenderAuth = cfg.SkipSenderAuth || o.Resolver == nil
	o.Store = st
	if o.TLS == nil {
		o.TLS = testtls.Config(t, "mx.local.test")
	}
	if os.Getenv("SMTP_TEST_LOG") == "" {
		o.Log = slog.New(slog.NewTextHandler(discard{}, nil))
	}
	e.srv, err = New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct {
		name string
		mode Mode
		tls  bool
	}{{"mx", MX, false}, {"submission", Submission, false}, {"submissions", Submission, true}, {"lmtp", LMTP, false}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		e.addr[l.name] = ln.Addr().String()
		go e.srv.Serve(ln, l.mode, l.tls)
	}
	tb.Cleanup(func() { e.srv.Close() })
	return e
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// client is a scripted conversation, line by line.
type client struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func (e *env) dial(name string) *client {
	e.t.Helper()
	return dialFrom(e.t, e.addr[name], "")
}

func dialFrom(t *testing.T, addr, local string) *client {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(120 * time.Second))
	c := &client{t: t, nc: nc, r: bufio.NewReader(nc)}
	c.expect("220")
	return c
}

func (c *client) startTLS() {
	c.t.Helper()
	c.cmd("STARTTLS", "220")
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.nc, c.r = tc, bufio.NewReader(tc)
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// read returns one complete reply (all lines).
func (c *client) read() string {
	c.t.Helper()
	var b strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read reply: %v (so far %q)", err, b.String())
		}
		b.WriteString(l)
		if len(l) < 4 || l[3] != '-' {
			return b.String()
		}
	}
}

// expect reads a reply and checks that it starts with want.
func (c *client) expect(want string) string {
	c.t.Helper()
	r := c.read()
	if !strings.HasPrefix(r, want) {
		c.t.Fatalf("want %q, got %q", want, r)
	}
	return r
}

func (c *client) cmd(line, want string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.expect(want)
}

// closed reports whether the server closed the connection.
func (c *client) closed() bool {
	c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		_, err := c.r.ReadString('\n')
		if err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

func (e *env) count(acct storage.Account, role string) int {
	e.t.Helper()
	mb, err := e.st.MailboxByRole(context.Background(), acct.ID, role)
	if err != nil {
		e.t.Fatal(err)
	}
	return int(mb.Messages)
}

// messages returns the raw messages of a mailbox.
func (e *env) messages(acct storage.Account, role string) []string {
	e.t.Helper()
	ctx := context.Background()
	mb, err := e.st.MailboxByRole(ctx, acct.ID, role)
	if err != nil {
		e.t.Fatal(err)
	}
	es, err := e.st.Emails(ctx, acct.ID, mb.ID, 1, ^uint32(0), 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, em := range es {
		b, err := e.st.Blob(ctx, em.BlobID)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

const simpleMsg = "From: Carol <carol@remote.example>\r\nTo: alice@local.test\r\nSubject: hi\r\nMessage-ID: <1@remote.example>\r\nDate: Mon, 1 Dec 2026 10:00:00 +0000\r\n\r\nHello.\r\n"

// sendMX runs one transaction on MX and returns the final reply.
func (c *client) transaction(from string, rcpts []string, msg string) string {
	c.t.Helper()
	c.cmd("MAIL FROM:<"+from+">", "250")
	for _, r := range rcpts {
		c.cmd("RCPT TO:<"+r+">", "250")
	}
	c.cmd("DATA", "354")
	c.send(msg + ".\r\n")
	return c.read()
}

func tlsDial(addr string) (net.Conn, error) {
	return tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
}

func newReader(nc net.Conn) *bufio.Reader { return bufio.NewReader(nc) }
