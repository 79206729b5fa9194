package main

import (
	"context"
	"fmt"
	"net"

	"github.com/stoa-mail/stoa/frontend/smtp"
)

func init() {
	RegisterRole(Role{Name: "smtp", Order: 10, Start: startSMTP})
}

// startSMTP opens the MX, submission (STARTTLS and implicit TLS) and LMTP
// listeners that are configured (an empty address disables one).
func startSMTP(ctx context.Context, a *App) error {
	c := a.Cfg.SMTP
	maxSize := c.MaxMessageSize
	if s := a.Cfg.Storage.MaxMessageSize; s > 0 && (maxSize <= 0 || s < maxSize) {
		maxSize = s // never accept what the store would refuse
	}
	o := smtp.Options{Store: a.Store, TLS: a.TLS, Log: a.Log, Registry: a.Registry}
	if c.DNSResolver != "" {
		o.Resolver = smtp.ResolverAt(c.DNSResolver)
	}
	srv, err := smtp.New(smtp.Config{
		Hostname: a.Cfg.Server.Hostname, MaxMessageSize: maxSize, MaxRecipients: c.MaxRecipients,
		MaxLineLength: c.MaxLineLength, MaxHeaders: c.MaxHeaders, MaxMIMEDepth: c.MaxMIMEDepth,
		MaxMIMEParts: c.MaxMIMEParts, MaxConns: c.MaxConns, MaxConnsPerIP: c.MaxConnsPerIP, ReadTimeout: c.ReadTimeout.Duration, TLSHandshakeTimeout: c.TLSHandshake.Duration,
		WriteTimeout: c.WriteTimeout.Duration, AllowInsecureAuth: c.AllowInsecureAuth,
		RateLimitPerHour: c.RateLimitPerHour, AuthFailuresPerIP: c.AuthFailuresPerIP,
		AuthFailuresPerLogin: c.AuthFailuresLogin, SkipSenderAuth: c.SkipSenderAuth, DNSTimeout: c.DNSTimeout.Duration,
		DNSCacheTTL: c.DNSCacheTTL.Duration,
	}, o)
	if err != nil {
		return err
	}
	listeners := []struct {
		what, addr string
		mode       smtp.Mode
		tls        bool
	}{
		{"smtp (MX)", c.MXListen, smtp.MX, false},
		{"submission (STARTTLS)", c.SubmissionListen, smtp.Submission, false},
		{"submissions (TLS)", c.SubmissionsListen, smtp.Submission, true},
		{"lmtp", c.LMTPListen, smtp.LMTP, false},
	}
	var opened []net.Listener
	for _, l := range listeners {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, o := range opened {
				o.Close()
			}
			return fmt.Errorf("%s: %w", l.what, err)
		}
		opened = append(opened, ln)
		mode, implicit := l.mode, l.tls
		go func() {
			if err := srv.Serve(ln, mode, implicit); err != nil {
				a.Log.Error("smtp listener stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
		scheme := "smtp://"
		if implicit {
			scheme = "smtps://"
		} else if mode == smtp.LMTP {
			scheme = "lmtp://"
		}
		a.Listen(l.what, scheme+ln.Addr().String())
	}
	a.OnClose(srv.Close)
	return nil
}
