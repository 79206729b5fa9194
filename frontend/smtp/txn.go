package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/stoa-mail/stoa/storage"
)

// txn is one mail transaction (RFC 5321 §3.3).
type txn struct {
	from    Path
	size    int64  // SIZE= (RFC 1870)
	body    string // BODY= (RFC 6152)
	utf8    bool   // SMTPUTF8 (RFC 6531)
	ret     string // DSN RET (RFC 3461 §4.3)
	envid   string // DSN ENVID (RFC 3461 §4.4)
	rcpts   []rcpt
	bdat    *bytes.Buffer // CHUNKING in progress (RFC 3030)
	started time.Time
}

type rcpt struct {
	path    Path
	account string // local: the account id; "" for a remote recipient
	notify  string // DSN NOTIFY (RFC 3461 §4.1)
	orcpt   string // DSN ORCPT (RFC 3461 §4.2), "type;address"
}

func (c *conn) cmdMail(arg string) error {
	if c.helo == "" {
		return c.protoError(reply(503, "5.5.1", "say EHLO first"))
	}
	if c.tx != nil {
		return c.protoError(reply(503, "5.5.1", "nested MAIL command"))
	}
	if c.mode == Submission && c.account == nil {
		return c.protoError(reply(530, "5.7.0", "authentication required (RFC 4954 §6)"))
	}
	rest, ok := cutPrefixFold(arg, "FROM:")
	if !ok {
		return c.protoError(reply(501, "5.5.4", "syntax: MAIL FROM:<address>"))
	}
	rest = strings.TrimLeft(rest, " ") // tolerated, though RFC 5321 has no space here
	utf8ok := hasParamFold(rest, "SMTPUTF8")
	from, params, err := ParsePath(rest, true, false, utf8ok)
	if err != nil {
		return c.protoError(reply(501, "5.1.7", "bad sender address: %v", err))
	}
	ps, err := ParseParams(params)
	if err != nil {
		return c.protoError(reply(501, "5.5.4", "%v", err))
	}
	tx := &txn{from: from, started: time.Now()}
	for _, p := range ps {
		switch p.Key {
		case "SIZE": // RFC 1870 §6
			n, err := strconv.ParseInt(p.Value, 10, 64)
			if err != nil || n < 0 {
				return c.protoError(reply(501, "5.5.4", "bad SIZE"))
			}
			if n > c.s.cfg.MaxMessageSize {
				c.s.m.rejections.WithLabelValues(c.mode.String(), "size").Inc()
				c.writeReply(reply(552, "5.3.4", "message size exceeds fixed limit of %d", c.s.cfg.MaxMessageSize))
				return nil
			}
			tx.size = n
		case "BODY": // RFC 6152; BINARYMIME is not offered
			v := strings.ToUpper(p.Value)
			if v != "7BIT" && v != "8BITMIME" {
				return c.protoError(reply(555, "5.5.4", "unsupported BODY"))
			}
			tx.body = v
		case "SMTPUTF8":
			if p.Value != "" {
				return c.protoError(reply(555, "5.5.4", "SMTPUTF8 takes no value"))
			}
			tx.utf8 = true
		case "RET":
			v := strings.ToUpper(p.Value)
			if v != "FULL" && v != "HDRS" {
				return c.protoError(reply(501, "5.5.4", "RET must be FULL or HDRS"))
			}
			tx.ret = v
		case "ENVID":
			v, err := DecodeXtext(p.Value)
			if err != nil || v == "" || len(v) > 100 {
				return c.protoError(reply(501, "5.5.4", "bad ENVID"))
			}
			tx.envid = v
		case "AUTH": // RFC 4954 §5: accepted, not trusted
		default:
			return c.protoError(reply(555, "5.5.4", "unknown MAIL parameter %s", p.Key))
		}
	}
	if c.mode == Submission {
		// A user sends only as an address they own (DESIGN §4).
		if from.IsNull() || !c.s.store.OwnsAddress(c.ctx, *c.account, from.String()) {
			c.s.m.rejections.WithLabelValues(c.mode.String(), "sender_not_owned").Inc()
			c.writeReply(reply(553, "5.7.1", "sender address not owned by the authenticated account"))
			return nil
		}
		if !c.s.lim.rate(c.account.ID, c.s.cfg.RateLimitPerHour) {
			c.s.m.rejections.WithLabelValues(c.mode.String(), "rate_limit").Inc()
			c.writeReply(reply(451, "4.7.1", "hourly sending limit reached, try later"))
			return nil
		}
	}
	c.tx = tx
	c.writeReply(reply(250, "2.1.0", "sender ok"))
	return nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

// hasParamFold reports whether the parameters after the path name key.
func hasParamFold(s, key string) bool {
	if i := closingBracket(s); i > 0 {
		s = s[i+1:]
	}
	for _, f := range strings.Fields(s) {
		if strings.EqualFold(f, key) {
			return true
		}
	}
	return false
}

func (c *conn) cmdRcpt(arg string) error {
	tx := c.tx
	if tx == nil {
		return c.protoError(reply(503, "5.5.1", "need MAIL first"))
	}
	if tx.bdat != nil {
		return c.protoError(reply(503, "5.5.1", "RCPT during BDAT"))
	}
	rest, ok := cutPrefixFold(arg, "TO:")
	if !ok {
		return c.protoError(reply(501, "5.5.4", "syntax: RCPT TO:<address>"))
	}
	rest = strings.TrimLeft(rest, " ")
	to, params, err := ParsePath(rest, false, true, tx.utf8)
	if err != nil {
		c.s.m.rejections.WithLabelValues(c.mode.String(), "bad_address").Inc()
		return c.protoError(reply(501, "5.1.3", "bad recipient address: %v", err))
	}
	ps, err := ParseParams(params)
	if err != nil {
		return c.protoError(reply(501, "5.5.4", "%v", err))
	}
	r := rcpt{path: to}
	for _, p := range ps {
		switch p.Key {
		case "NOTIFY": // RFC 3461 §4.1
			v := strings.ToUpper(p.Value)
			if !validNotify(v) {
				return c.protoError(reply(501, "5.5.4", "bad NOTIFY"))
			}
			r.notify = v
		case "ORCPT": // RFC 3461 §4.2: addr-type ";" xtext
			typ, addr, ok := strings.Cut(p.Value, ";")
			dec, err := DecodeXtext(addr)
			if !ok || !validKeyword(typ) || err != nil || dec == "" {
				return c.protoError(reply(501, "5.5.4", "bad ORCPT"))
			}
			r.orcpt = strings.ToLower(typ) + ";" + dec
		default:
			return c.protoError(reply(555, "5.5.4", "unknown RCPT parameter %s", p.Key))
		}
	}
	if len(tx.rcpts) >= c.s.cfg.MaxRecipients {
		// RFC 5321 §4.5.3.1.10: 452 and the client sends the rest later.
		c.s.m.rejections.WithLabelValues(c.mode.String(), "too_many_recipients").Inc()
		c.writeReply(reply(452, "4.5.3", "too many recipients"))
		return nil
	}
	if rp := c.resolve(to); rp != nil {
		c.writeReply(rp)
		return nil
	}
	rr, err := c.s.store.ResolveRecipient(c.ctx, c.addrForLookup(to))
	switch {
	case err == nil:
		r.account = rr.AccountID
	case errors.Is(err, storage.ErrNotLocal) && to.Domain == "":
		// <Postmaster> but the host name is not a local domain.
		c.s.m.rejections.WithLabelValues(c.mode.String(), "no_such_user").Inc()
		c.writeReply(reply(550, "5.1.1", "no postmaster here"))
		return nil
	case errors.Is(err, storage.ErrNotLocal) && c.mode == Submission:
		// Authenticated: remote recipients go to the outbound queue.
	case errors.Is(err, storage.ErrNotLocal) && c.mode == LMTP:
		c.s.m.rejections.WithLabelValues(c.mode.String(), "not_local").Inc()
		c.writeReply(reply(550, "5.1.2", "domain not served here"))
		return nil
	case errors.Is(err, storage.ErrNotLocal):
		c.s.m.rejections.WithLabelValues(c.mode.String(), "relay_denied").Inc()
		c.writeReply(reply(550, "5.7.1", "relay access denied"))
		return nil
	case errors.Is(err, storage.ErrNoSuchUser):
		c.s.m.rejections.WithLabelValues(c.mode.String(), "no_such_user").Inc()
		c.writeReply(reply(550, "5.1.1", "no such user here"))
		return nil
	default:
		c.log.Warn("resolve recipient", "err", err)
		c.writeReply(reply(451, "4.3.0", "temporary lookup failure"))
		return nil
	}
	tx.rcpts = append(tx.rcpts, r)
	c.writeReply(reply(250, "2.1.5", "recipient ok"))
	return nil
}

// resolve refuses what must never reach the directory: a Postmaster
// without domain is the local postmaster (RFC 5321 §4.1.1.3), others are
// looked up as sent.
func (c *conn) resolve(to Path) *Reply {
	if to.Domain == "" && to.Local != "Postmaster" {
		return reply(501, "5.1.3", "domain required")
	}
	if strings.HasPrefix(to.Domain, "[") && c.mode != Submission {
		c.s.m.rejections.WithLabelValues(c.mode.String(), "relay_denied").Inc()
		return reply(550, "5.7.1", "relay access denied")
	}
	return nil
}

func (c *conn) addrForLookup(p Path) string {
	if p.Domain == "" {
		return "postmaster@" + c.s.cfg.Hostname
	}
	return p.String()
}

func validNotify(v string) bool {
	if v == "NEVER" {
		return true
	}
	seen := map[string]bool{}
	for _, x := range strings.Split(v, ",") {
		if (x != "SUCCESS" && x != "FAILURE" && x != "DELAY") || seen[x] {
			return false
		}
		seen[x] = true
	}
	return len(seen) > 0
}

func (c *conn) cmdData(arg string) error {
	if arg != "" {
		return c.protoError(reply(501, "5.5.4", "DATA takes no parameters"))
	}
	if c.tx == nil {
		return c.protoError(reply(503, "5.5.1", "need MAIL first"))
	}
	if c.tx.bdat != nil {
		return c.protoError(reply(503, "5.5.1", "DATA during BDAT"))
	}
	if len(c.tx.rcpts) == 0 {
		return c.protoError(reply(554, "5.5.1", "no valid recipients"))
	}
	c.writeReply(&Reply{Code: 354, Text: "go ahead, end with <CR><LF>.<CR><LF>"})
	if err := c.bw.Flush(); err != nil {
		return err
	}
	raw, problem, err := c.readData()
	if err != nil {
		return err
	}
	c.finish(raw, problem)
	return nil
}

var (
	errLeadingFold = reply(554, "5.6.0", "message starts with a folded continuation line, not a header field (RFC 5322 §2.2)")
	errBareLF      = reply(554, "5.6.0", "bare CR or LF in message refused: lines must end with CRLF (RFC 5321 §2.3.8; SMTP smuggling)")
	errTooBig      = reply(552, "5.3.4", "message too big")
)

// readData reads the message of a DATA command up to the end-of-data line
// (RFC 5321 §4.1.1.4), undoing dot-stuffing (§4.5.2). Only <CRLF>.<CRLF>
// ends it: a "." line after a bare LF or CR is data, so <LF>.<CR><LF> and
// <LF>.<LF> never end the message (SMTP smuggling). Bare CR or LF, long
// lines and excess size are reported as a problem after the whole message
// was consumed; the connection stays usable.
func (c *conn) readData() ([]byte, *Reply, error) {
	max := c.s.cfg.MaxMessageSize
	buf := bytes.NewBuffer(make([]byte, 0, 16<<10))
	var problem *Reply
	setProblem := func(r *Reply) {
		if problem == nil {
			problem = r
		}
	}
	lineStart := true // the previous line ended with CRLF
	long := false     // inside a line longer than the reader's buffer
	var last byte
	for {
		frag, err := c.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			setProblem(errLineTooLong)
			long, last = true, frag[len(frag)-1]
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		n := len(frag)
		crlf := n >= 2 && frag[n-2] == '\r' || n == 1 && long && last == '\r'
		if long {
			long, lineStart = false, crlf
			continue
		}
		if lineStart && frag[0] == '.' {
			if n == 3 && crlf {
				break
			}
			frag, n = frag[1:], n-1
		}
		content := frag[:n-1]
		if crlf {
			content = frag[:n-2]
		}
		if !crlf || bytes.IndexByte(content, '\r') >= 0 {
			setProblem(errBareLF)
		}
		if len(content) > c.s.cfg.MaxLineLength {
			setProblem(errLineTooLong)
		}
		if int64(buf.Len()+n) > max {
			setProblem(errTooBig)
		}
		if problem == nil {
			buf.Write(frag)
		}
		lineStart = crlf
	}
	return buf.Bytes(), problem, nil
}

// checkLines applies the DATA rules to a BDAT message: CRLF line ends
// only (BINARYMIME is not offered, RFC 3030 §3) and the line length.
func checkLines(raw []byte, maxLine int) *Reply {
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			if bytes.IndexByte(raw, '\r') >= 0 {
				return errBareLF
			}
			if len(raw) > maxLine {
				return errLineTooLong
			}
			return nil // last line without line end: tolerated in BDAT
		}
		if i == 0 || raw[i-1] != '\r' || bytes.IndexByte(raw[:i-1], '\r') >= 0 {
			return errBareLF
		}
		if i-1 > maxLine {
			return errLineTooLong
		}
		raw = raw[i+1:]
	}
	return nil
}

// cmdBdat handles CHUNKING (RFC 3030 §2). The chunk that follows the
// command is always consumed, whatever the reply; if its size cannot be
// parsed there is no way to find the next command, so the session ends.
func (c *conn) cmdBdat(arg string) error {
	f := strings.Split(arg, " ")
	size, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || size < 0 || len(f[0]) > 18 || f[0][0] == '+' || len(f) > 2 || len(f) == 2 && !strings.EqualFold(f[1], "LAST") {
		c.writeReply(reply(501, "5.5.4", "malformed BDAT command, closing"))
		return errClose
	}
	last := len(f) == 2
	tx := c.tx
	if tx == nil || len(tx.rcpts) == 0 {
		if err := c.discard(size); err != nil {
			return err
		}
		return c.protoError(reply(503, "5.5.1", "need MAIL and RCPT first"))
	}
	if tx.bdat == nil {
		tx.bdat = &bytes.Buffer{}
	}
	if int64(tx.bdat.Len())+size > c.s.cfg.MaxMessageSize {
		if err := c.discard(size); err != nil {
			return err
		}
		c.tx = nil
		c.s.m.rejections.WithLabelValues(c.mode.String(), "size").Inc()
		c.replyAll(tx, errTooBig)
		return nil
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	if _, err := tx.bdat.ReadFrom(&limitedReader{c.br, size}); err != nil {
		return err
	}
	if !last {
		c.writeReply(reply(250, "2.0.0", "%d octets received", size))
		return nil
	}
	raw := tx.bdat.Bytes()
	c.finish(raw, checkLines(raw, c.s.cfg.MaxLineLength))
	return nil
}

// limitedReader reads exactly n bytes; an early EOF is an error.
type limitedReader struct {
	r *bufio.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if err == io.EOF && l.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// replyAll answers the end of a message: once, or once per recipient on
// LMTP (RFC 2033 §4.2).
func (c *conn) replyAll(tx *txn, r *Reply) {
	if c.mode == LMTP {
		for range tx.rcpts {
			c.writeReply(r)
		}
		return
	}
	c.writeReply(r)
}

// finish ends a transaction: checks, delivery and the reply.
func (c *conn) finish(raw []byte, problem *Reply) {
	tx := c.tx
	c.tx = nil // RFC 5321 §4.1.1.4: the transaction ends with the reply
	c.nmsg++
	if problem != nil {
		reason := "syntax"
		switch problem {
		case errBareLF:
			reason = "bare_lf"
		case errTooBig:
			reason = "size"
		case errLineTooLong:
			reason = "line_length"
		}
		c.s.m.rejections.WithLabelValues(c.mode.String(), reason).Inc()
		c.log.Info("message refused", "reason", reason)
		c.replyAll(tx, problem)
		return
	}
	start := time.Now()
	res := c.s.deliver(c, tx, raw)
	c.s.m.latency.WithLabelValues(c.mode.String()).Observe(time.Since(start).Seconds())
	if c.mode == LMTP {
		for _, r := range res.perRcpt {
			if r == nil {
				r = res.overall
			}
			c.writeReply(r)
		}
		return
	}
	c.writeReply(res.overall)
}
