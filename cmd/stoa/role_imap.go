package main

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/stoa-mail/stoa/frontend/imap"
	"github.com/stoa-mail/stoa/indexer"
	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/mailmeta"
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
		Hostname:              a.Cfg.Server.Hostname,
		AllowInsecureAuth:     c.AllowInsecureAuth,
		MaxLiteral:            c.MaxLiteral,
		MaxLiteralBeforeLogin: c.MaxLiteralBeforeLogin,
		MaxLineLength:         c.MaxLineLength,
		MaxConns:              c.MaxConns,
		MaxConnsPerIP:         c.MaxConnsPerIP,
		IdleTimeout:           c.IdleTimeout.Duration,
		CommandTimeout:        c.CommandTimeout.Duration,
		TLSHandshakeTimeout:   c.TLSHandshakeTimeout.Duration,
		PollInterval:          poll,
		KeepAlive:             c.IdleKeepAlive.Duration,
		MaxAuthFailures:       c.MaxAuthFailures,
		AuthFailureDelay:      c.AuthFailureDelay.Duration,
		MaxSearchKeyLen:       c.MaxSearchKeyLen,
		MaxSearchTextKeys:     c.MaxSearchTextKeys,
		MaxSearchTerms:        c.MaxSearchTerms,
	}, a.Log, a.Registry)
	if a.Cfg.Index.Backend != "none" {
		srv.Searcher = imapSearch{a}
	}
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

// imapSearch answers IMAP SEARCH text keys from the full-text index (ADR
// 0008: word semantics), which also matches mail the indexer has not seen
// yet. When the index is too far behind it declines and the IMAP server
// scans the messages instead.
type imapSearch struct{ a *App }

func (s imapSearch) Search(ctx context.Context, acct string, mb uint32, q imap.TextQuery) ([]uint32, bool, error) {
	se, err := Searcher(ctx, s.a)
	if se == nil || err != nil {
		return nil, false, err
	}
	iq, ok := indexQuery(q)
	if !ok {
		return nil, false, nil
	}
	if d := s.a.Cfg.Index.SearchTimeout.Duration; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	uids, err := se.Search(ctx, acct, mb, iq)
	if errors.Is(err, indexer.ErrIndexBehind) {
		return nil, false, nil
	}
	return uids, err == nil, err
}

// Prepare makes the IMAP server's scan (index behind) match like the index.
func (s imapSearch) Prepare(acct string, e *storage.Email, meta *mailmeta.Meta, raw []byte) func(imap.TextQuery) bool {
	m := indexer.NewMatcher(indexer.BuildDoc(acct, *e, meta, raw, s.a.Store.Config().ParseLimits))
	return func(q imap.TextQuery) bool { // one analysis of the message for every key
		iq, ok := indexQuery(q)
		return ok && m.Match(iq)
	}
}

func indexQuery(q imap.TextQuery) (indexer.Query, bool) {
	var iq indexer.Query
	switch q.Field {
	case "TEXT":
		iq = indexer.Text(q.Value)
	case "BODY":
		iq = indexer.Body(q.Value)
	case "SUBJECT":
		iq = indexer.Subject(q.Value)
	case "FROM":
		iq = indexer.From(q.Value)
	case "TO":
		iq = indexer.To(q.Value)
	case "CC":
		iq = indexer.Cc(q.Value)
	case "BCC":
		iq = indexer.Bcc(q.Value)
	case "HEADER":
		iq = indexer.Header(q.Header, q.Value)
	default:
		return iq, false
	}
	return iq, true
}
