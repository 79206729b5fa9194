package smtp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/stoa-mail/stoa/storage"
)

// cmdAuth implements AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN
// (draft-murchison-sasl-login). It exists on submission only; MX never
// offers it, so a stolen password cannot turn port 25 into a relay.
func (c *conn) cmdAuth(arg string) error {
	if c.mode != Submission {
		return c.protoError(reply(502, "5.5.1", "AUTH not available on this port"))
	}
	if c.helo == "" || !c.ehlo {
		return c.protoError(reply(503, "5.5.1", "say EHLO first"))
	}
	if !c.authAllowed() {
		// RFC 4954 §6: 538 when encryption is required.
		return c.protoError(reply(538, "5.7.11", "encryption required for authentication, use STARTTLS"))
	}
	if c.account != nil {
		return c.protoError(reply(503, "5.5.1", "already authenticated"))
	}
	if c.tx != nil {
		return c.protoError(reply(503, "5.5.1", "AUTH not allowed during a transaction"))
	}
	mech, ir, hasIR := strings.Cut(arg, " ")
	var login, password string
	switch strings.ToUpper(mech) {
	case "PLAIN":
		resp, err := c.saslStep("", ir, hasIR)
		if err != nil {
			return c.saslError(err)
		}
		// message = [authzid] NUL authcid NUL passwd (RFC 4616 §2)
		parts := bytes.Split(resp, []byte{0})
		if len(parts) != 3 || (len(parts[0]) > 0 && !bytes.Equal(parts[0], parts[1])) {
			return c.protoError(reply(501, "5.5.2", "malformed PLAIN response"))
		}
		login, password = string(parts[1]), string(parts[2])
	case "LOGIN":
		u, err := c.saslStep("VXNlcm5hbWU6", ir, hasIR) // "Username:"
		if err != nil {
			return c.saslError(err)
		}
		p, err := c.saslStep("UGFzc3dvcmQ6", "", false) // "Password:"
		if err != nil {
			return c.saslError(err)
		}
		login, password = string(u), string(p)
	default:
		return c.protoError(reply(504, "5.5.4", "unsupported mechanism"))
	}
	login = strings.TrimSpace(login)
	lim, cfg := c.s.lim, c.s.cfg
	pair := "pair\x00" + c.ipKey + "\x00" + strings.ToLower(login)
	ipk := "ip\x00" + c.ipKey
	// Failures count per client address and per (address, login): an
	// attacker elsewhere cannot lock the owner out (ADR 0006).
	if !lim.allow(ipk, cfg.AuthFailuresPerIP, cfg.AuthFailureWindow) ||
		!lim.allow(pair, cfg.AuthFailuresPerLogin, cfg.AuthFailureWindow) {
		c.s.m.rejections.WithLabelValues(c.mode.String(), "auth_limit").Inc()
		c.writeReply(reply(454, "4.7.0", "too many failed attempts, try later"))
		return errClose
	}
	a, err := c.s.store.Authenticate(c.ctx, login, password)
	if err != nil || storage.IsSystemAccount(a.ID) {
		if err != nil && !errors.Is(err, storage.ErrAuthFailed) && !errors.Is(err, storage.ErrAccountDisabled) {
			c.log.Warn("authenticate", "err", err)
			c.writeReply(reply(454, "4.7.0", "temporary authentication failure"))
			return nil
		}
		lim.fail(ipk, cfg.AuthFailureWindow)
		lim.fail(pair, cfg.AuthFailureWindow)
		c.s.m.rejections.WithLabelValues(c.mode.String(), "auth_failed").Inc()
		c.log.Info("auth failed", "login", login)
		return c.protoError(reply(535, "5.7.8", "authentication credentials invalid"))
	}
	lim.reset(pair)
	c.account = &a
	c.log.Info("authenticated", "account", a.ID)
	c.writeReply(reply(235, "2.7.0", "authentication succeeded"))
	return nil
}

var errSASLCancel = errors.New("cancelled")

// saslStep returns the client's response: the initial response if given
// ("=" is empty, RFC 4954 §4), else after a 334 challenge.
func (c *conn) saslStep(challenge, ir string, hasIR bool) ([]byte, error) {
	s := ir
	if !hasIR {
		c.writeReply(&Reply{Code: 334, Text: challenge})
		line, err := c.readLine()
		if err != nil {
			return nil, err
		}
		s = line
	}
	if s == "*" {
		return nil, errSASLCancel
	}
	if s == "=" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

func (c *conn) saslError(err error) error {
	var r *Reply
	switch {
	case errors.Is(err, errSASLCancel):
		return c.protoError(reply(501, "5.0.0", "authentication cancelled"))
	case errors.As(err, &r):
		return c.protoError(r)
	case errors.As(err, new(base64.CorruptInputError)):
		return c.protoError(reply(501, "5.5.2", "invalid base64"))
	}
	return err
}

// limiter counts events in fixed windows, in memory: limits are per
// node (frontends are stateless; ADR 0006).
type limiter struct {
	mu sync.Mutex
	w  map[string]*window
}

type window struct {
	start time.Time
	n     int
}

func newLimiter() *limiter { return &limiter{w: map[string]*window{}} }

func (l *limiter) get(key string, per time.Duration, now time.Time) *window {
	w := l.w[key]
	if w == nil || now.Sub(w.start) >= per {
		if len(l.w) > 100_000 {
			for k, x := range l.w {
				if now.Sub(x.start) >= time.Hour {
					delete(l.w, k)
				}
			}
		}
		w = &window{start: now}
		l.w[key] = w
	}
	return w
}

func (l *limiter) allow(key string, max int, per time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.get(key, per, time.Now()).n < max
}

func (l *limiter) fail(key string, per time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.get(key, per, time.Now()).n++
}

func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.w, key)
}

// rate counts one submitted message for account; false when the hourly
// limit is reached (max 0: unlimited).
func (l *limiter) rate(account string, max int) bool {
	if max <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.get("rate\x00"+account, time.Hour, time.Now())
	if w.n >= max {
		return false
	}
	w.n++
	return true
}
