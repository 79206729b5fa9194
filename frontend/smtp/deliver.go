package smtp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/mail"
	"strings"
	"time"

	"github.com/stoa-mail/stoa/antispam"
	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/mailmeta"
)

// result is the outcome of one message: one reply for SMTP, one per
// accepted recipient for LMTP.
type result struct {
	overall *Reply
	perRcpt []*Reply
}

func same(tx *txn, r *Reply) result {
	res := result{overall: r}
	for range tx.rcpts {
		res.perRcpt = append(res.perRcpt, r)
	}
	return res
}

// field is one top-level header field: raw[start:end] including its
// continuation lines and the final CRLF.
type field struct {
	name       string
	start, end int
}

// scanHeader finds the top-level fields of a CRLF message. It stops at
// the empty line, or at a line that is neither a field nor a continuation.
func scanHeader(raw []byte) (fs []field, bodyStart int) {
	i := 0
	for i < len(raw) {
		le := bytes.IndexByte(raw[i:], '\n')
		next := len(raw)
		if le >= 0 {
			next = i + le + 1
		}
		line := raw[i:next]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return fs, next
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(fs) > 0 {
				fs[len(fs)-1].end = next
			}
			i = next
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return fs, i
		}
		fs = append(fs, field{name: string(bytes.TrimRight(line[:colon], " \t")), start: i, end: next})
		i = next
	}
	return fs, len(raw)
}

// value returns a field's unfolded value (RFC 5322 §2.2.3).
func (f field) value(raw []byte) string {
	v := raw[f.start:f.end]
	v = v[bytes.IndexByte(v, ':')+1:]
	s := strings.NewReplacer("\r\n", "", "\n", "").Replace(string(v))
	return strings.TrimSpace(s)
}

func countFields(fs []field, name string) (n int, first int) {
	first = -1
	for i, f := range fs {
		if strings.EqualFold(f.name, name) {
			if first < 0 {
				first = i
			}
			n++
		}
	}
	return n, first
}

// deliveryID is the idempotency key of one message: a retry of the same
// Deliver call (engine timeouts) never stores it twice (DESIGN §2.5).
func deliveryID(session string, n int, raw []byte) string {
	h := sha256.New()
	h.Write([]byte(session))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
	h.Write(raw)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// protocolName is the "with" of the Received header (RFC 3848).
func (c *conn) protocolName() string {
	p := "SMTP"
	switch {
	case c.mode == LMTP:
		p = "LMTP"
	case c.ehlo:
		p = "ESMTP"
	}
	if c.tls {
		p += "S"
	}
	if c.account != nil {
		p += "A"
	}
	return p
}

// received builds the trace field (RFC 5321 §4.4). The recipient is named
// only when there is one, so Bcc recipients are not disclosed.
func (c *conn) received(tx *txn, now time.Time) string {
	var b strings.Builder
	b.WriteString("Received: from ")
	b.WriteString(c.helo)
	b.WriteString(" (")
	if c.ip != nil {
		if c.ip.To4() != nil {
			b.WriteString("[" + c.ip.String() + "]")
		} else {
			b.WriteString("[IPv6:" + c.ip.String() + "]")
		}
	} else {
		b.WriteString("unknown")
	}
	b.WriteString(")\r\n\tby ")
	b.WriteString(c.s.cfg.Hostname)
	b.WriteString(" (Stoa) with ")
	b.WriteString(c.protocolName())
	b.WriteString(" id ")
	b.WriteString(c.id)
	b.WriteString(".")
	b.WriteString(itoa(c.nmsg))
	if c.tls {
		b.WriteString("\r\n\t(" + c.tlsVer + ")")
	}
	if len(tx.rcpts) == 1 {
		b.WriteString("\r\n\tfor <" + tx.rcpts[0].path.String() + ">")
	}
	b.WriteString(";\r\n\t")
	b.WriteString(now.Format(time.RFC1123Z))
	b.WriteString("\r\n")
	return b.String()
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}

// checkStructure enforces the header and MIME limits. Only multipart and
// message/* messages can nest, so only those are parsed here; the store
// parses every message once more when it stores it.
func (s *Server) checkStructure(raw []byte, fs []field) *Reply {
	if len(fs) > s.cfg.MaxHeaders {
		return reply(552, "5.6.0", "too many header fields (limit %d)", s.cfg.MaxHeaders)
	}
	_, i := countFields(fs, "Content-Type")
	if i < 0 {
		return nil
	}
	ct := strings.ToLower(fs[i].value(raw))
	if !strings.HasPrefix(ct, "multipart/") && !strings.HasPrefix(ct, "message/") {
		return nil
	}
	m := mailmeta.Parse(raw, mailmeta.Limits{MaxDepth: s.cfg.MaxMIMEDepth, MaxParts: s.cfg.MaxMIMEParts})
	for _, d := range m.Defects {
		if strings.Contains(d, ": depth limit") {
			return reply(554, "5.6.0", "MIME nesting deeper than %d levels", s.cfg.MaxMIMEDepth)
		}
		if strings.HasSuffix(d, ": part limit") {
			return reply(554, "5.6.0", "more than %d MIME parts", s.cfg.MaxMIMEParts)
		}
	}
	return nil
}

// storeReply maps a storage error to its SMTP reply.
func storeReply(err error) *Reply {
	switch {
	case errors.Is(err, storage.ErrOverQuota):
		return reply(452, "4.2.2", "mailbox full")
	case errors.Is(err, storage.ErrTooLarge):
		return reply(552, "5.3.4", "message too big for the mailbox")
	case errors.Is(err, storage.ErrAccountDisabled):
		return reply(550, "5.2.1", "mailbox disabled")
	case errors.Is(err, storage.ErrNoSuchUser), errors.Is(err, storage.ErrNotFound):
		return reply(550, "5.1.1", "no such user here")
	}
	return reply(451, "4.3.0", "temporary storage failure, try again")
}

// deliver runs the pipeline for one received message: structure limits,
// submission rules or sender authentication, antispam, trace fields, then
// the store and the queue.
func (s *Server) deliver(c *conn, tx *txn, raw []byte) result {
	mode := c.mode.String()
	// RFC 5322 §2.2: a message starts with a field name. A first line that
	// starts with white space would fold into the trace fields prepended
	// below (e.g. forge results inside our Authentication-Results).
	if len(raw) > 0 && (raw[0] == ' ' || raw[0] == '\t') {
		s.m.rejections.WithLabelValues(mode, "structure").Inc()
		return same(tx, errLeadingFold)
	}
	fs, bodyStart := scanHeader(raw)
	if r := s.checkStructure(raw, fs); r != nil {
		s.m.rejections.WithLabelValues(mode, "structure").Inc()
		return same(tx, r)
	}
	now := time.Now()
	var prefix strings.Builder
	var drop []field // fields removed from the message
	junk := false
	switch c.mode {
	case Submission:
		if r := s.checkSubmission(c, raw, fs); r != nil {
			return same(tx, r)
		}
		prefix.WriteString(c.received(tx, now))
		// RFC 6409 §8.2, §8.3: a submission server may add what is missing.
		if n, _ := countFields(fs, "Message-ID"); n == 0 {
			prefix.WriteString("Message-ID: <" + newSessionID() + newSessionID() + "@" + s.cfg.Hostname + ">\r\n")
		}
		if n, _ := countFields(fs, "Date"); n == 0 {
			prefix.WriteString("Date: " + now.Format(time.RFC1123Z) + "\r\n")
		}
	default:
		prefix.WriteString(c.received(tx, now))
		env := antispam.Envelope{RemoteIP: c.ip, Helo: c.helo, MailFrom: tx.from.String(), TLS: c.tls}
		for _, r := range tx.rcpts {
			env.Recipients = append(env.Recipients, r.path.String())
		}
		if c.mode == MX {
			// RFC 8601 §5: remove results that claim to be ours.
			for _, f := range fs {
				if strings.EqualFold(f.name, "Authentication-Results") && authservID(f.value(raw)) == strings.ToLower(s.cfg.Hostname) {
					drop = append(drop, f)
				}
			}
			if !s.cfg.SkipSenderAuth {
				ar := s.authenticate(c, tx, raw, fs)
				env.SPF, env.DKIM, env.DMARC = ar.spf, ar.dkim, ar.dmarc
				prefix.WriteString(ar.header)
			}
		}
		ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		v := s.checker.Check(ctx, env, raw[:bodyStart], raw)
		cancel()
		switch v.Action {
		case antispam.Reject:
			s.m.rejections.WithLabelValues(mode, "antispam").Inc()
			msg := v.Reason
			if msg == "" {
				msg = "message refused as spam"
			}
			return same(tx, reply(550, "5.7.1", "%s", sanitizeReply(msg)))
		case antispam.Junk:
			junk = true
		}
		for _, h := range v.Headers {
			prefix.WriteString(sanitizeHeaderName(h.Name) + ": " + sanitizeHeaderValue(h.Value) + "\r\n")
		}
	}
	final := compose(prefix.String(), raw, drop)
	return s.commit(c, tx, final, junk)
}

// compose prepends the new fields and leaves out the dropped ones.
func compose(prefix string, raw []byte, drop []field) []byte {
	out := make([]byte, 0, len(prefix)+len(raw))
	out = append(out, prefix...)
	pos := 0
	for _, f := range drop {
		out = append(out, raw[pos:f.start]...)
		pos = f.end
	}
	return append(out, raw[pos:]...)
}

func sanitizeReply(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func sanitizeHeaderName(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f || r == ':' {
			return '-'
		}
		return r
	}, s)
}

func sanitizeHeaderValue(s string) string { return sanitizeReply(s) }

// checkSubmission: exactly one From field with one address that the
// account owns (RFC 5322 §3.6, DESIGN §4).
func (s *Server) checkSubmission(c *conn, raw []byte, fs []field) *Reply {
	n, i := countFields(fs, "From")
	if n != 1 {
		s.m.rejections.WithLabelValues("submission", "from_header").Inc()
		return reply(554, "5.6.0", "exactly one From header field is required (RFC 5322 §3.6)")
	}
	list, err := mail.ParseAddressList(fs[i].value(raw))
	if err != nil || len(list) != 1 {
		s.m.rejections.WithLabelValues("submission", "from_header").Inc()
		return reply(554, "5.6.0", "From must hold exactly one valid address")
	}
	if !s.store.OwnsAddress(c.ctx, *c.account, list[0].Address) {
		s.m.rejections.WithLabelValues("submission", "from_not_owned").Inc()
		return reply(553, "5.7.1", "From address not owned by the authenticated account")
	}
	return nil
}

// store delivers local recipients with one Deliver (one blob, every
// target) and queues the remote ones with one Enqueue. 250 only when all
// of them are durable.
func (s *Server) commit(c *conn, tx *txn, raw []byte, junk bool) result {
	mode := c.mode.String()
	id := deliveryID(c.id, c.nmsg, raw)
	res := result{perRcpt: make([]*Reply, len(tx.rcpts))}
	targetOf := make([]int, len(tx.rcpts))
	var targets []storage.Target
	byAccount := map[string]int{}
	var remote []storage.QueuedRecipient
	for i, r := range tx.rcpts {
		targetOf[i] = -1
		if r.account == "" {
			remote = append(remote, storage.QueuedRecipient{Address: r.path.String(), Notify: r.notify, ORcpt: r.orcpt})
			continue
		}
		// One copy per account, however many of its addresses were named.
		t, ok := byAccount[r.account]
		if !ok {
			t = len(targets)
			byAccount[r.account] = t
			tg := storage.Target{Account: r.account}
			if junk {
				tg.Role = storage.RoleJunk
			}
			targets = append(targets, tg)
		}
		targetOf[i] = t
	}
	// The id in the reply is the one in our Received field and the log.
	ok := reply(250, "2.0.0", "ok, id %s.%d", c.id, c.nmsg)
	var failed *Reply
	if len(targets) > 0 {
		ds, err := s.store.Deliver(c.ctx, storage.Delivery{ID: id, Raw: raw, Targets: targets})
		if err != nil {
			c.log.Warn("deliver", "err", err)
			failed = storeReply(err)
			for i := range res.perRcpt {
				res.perRcpt[i] = failed
			}
		} else {
			for i := range tx.rcpts {
				t := targetOf[i]
				if t < 0 {
					continue
				}
				if e := ds[t].Err; e != nil {
					c.log.Warn("deliver", "account", targets[t].Account, "err", e)
					res.perRcpt[i] = storeReply(e)
					if failed == nil {
						failed = res.perRcpt[i]
					}
					s.m.deliveries.WithLabelValues(mode, "failed").Inc()
				} else {
					res.perRcpt[i] = ok
					result := "delivered"
					if junk {
						result = "junk"
					}
					s.m.deliveries.WithLabelValues(mode, result).Inc()
				}
			}
		}
	}
	if len(remote) > 0 && failed == nil {
		e := storage.QueueEntry{ID: id, From: tx.from.String(), Recipients: remote, Account: c.account.ID,
			EnvID: tx.envid, Ret: tx.ret, SMTPUTF8: tx.utf8, Body: tx.body}
		if _, err := s.store.Enqueue(c.ctx, e, raw); err != nil {
			c.log.Warn("enqueue", "err", err)
			failed = storeReply(err)
			s.m.deliveries.WithLabelValues(mode, "failed").Add(float64(len(remote)))
		} else {
			s.m.deliveries.WithLabelValues(mode, "queued").Add(float64(len(remote)))
		}
		for i, r := range tx.rcpts {
			if r.account == "" {
				res.perRcpt[i] = ok
				if failed != nil {
					res.perRcpt[i] = failed
				}
			}
		}
	}
	res.overall = ok
	if failed != nil {
		res.overall = failed
	}
	c.log.Info("message", "id", c.id+"."+itoa(c.nmsg), "delivery", id[:16], "size", len(raw), "rcpts", len(tx.rcpts), "junk", junk,
		"result", res.overall.Code)
	return res
}
