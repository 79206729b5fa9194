package main

import (
	"context"
	"net"
	"time"

	"github.com/stoa-mail/stoa/frontend/imap"
)

func init() {
	RegisterRole(Role{Name: "imap", Order: 20, Start: startIMAP})
}

// startIMAP serves IMAP with STARTTLS on imap.listen and implicit TLS on
// imap.tls_listen (RFC 8314).
func startIMAP(ctx context.Context, a *App) error {
	c := a.Cfg.IMAP
	poll := c.PollInterval.Duration
	if a.Cfg.Storage.Engine == "embedded" {
		// One process owns the data folder: Store.Watch sees every change,
		// so sessions need not poll the change log.
		poll = 24 * time.Hour
	}
	srv := imap.New(a.Store, a.TLS, imap.Config{
		Hostname:          a.Cfg.Server.Hostname,
		AllowInsecureAuth: c.AllowInsecureAuth,
		MaxLiteral:        c.MaxLiteral,
		MaxLineLength:     c.MaxLineLength,
		MaxConns:          c.MaxConns,
		MaxConnsPerIP:     c.MaxConnsPerIP,
		IdleTimeout:       c.IdleTimeout.Duration,
		PollInterval:      poll,
		KeepAlive:         c.IdleKeepAlive.Duration,
		MaxAuthFailures:   c.MaxAuthFailures,
		AuthFailureDelay:  c.AuthFailureDelay.Duration,
	}, a.Log, a.Registry)
	for _, l := range []struct {
		addr, what string
		tls        bool
	}{{c.Listen, "imap (STARTTLS)", false}, {c.TLSListen, "imaps (implicit TLS)", true}} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			srv.Close()
			return err
		}
		go srv.Serve(ln, l.tls)
		a.Listen(l.what, ln.Addr().String())
	}
	a.OnClose(srv.Close)
	return nil
}
