package imap

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/stoa-mail/stoa/frontend/connlimit"
	"github.com/stoa-mail/stoa/frontend/imap/proto"
	"github.com/stoa-mail/stoa/storage"
)

type state uint8

const (
	stateNotAuth state = iota
	stateAuth
	stateSelected
	stateLogout
)

// respErr is a tagged NO or BAD with an RFC 5530 response code. Text is
// ours, never client input.
type respErr struct {
	status, code, text string
}

func (e *respErr) Error() string { return e.status + " " + e.text }

func no(code, text string) error { return &respErr{"NO", code, text} }
func bad(text string) error      { return &respErr{"BAD", "CLIENTBUG", text} }

var errLogout = errors.New("logout")

type session struct {
	srv  *Server
	conn net.Conn
	br   *bufio.Reader
	w    writer
	rd   proto.Reader
	ctx  context.Context

	tls   bool
	state state
	acct  storage.Account
	fails int

	condstore, qresync, rev2 bool // enabled (RFC 7162, RFC 9051)

	sel      *selected
	watch    <-chan struct{}
	unwatch  func()
	lastPoll time.Time

	saved []uint32 // SEARCHRES "$" as UIDs (RFC 5182)

	okCode, okText string // tagged OK set by a handler
	cmdName        string
}

func newSession(srv *Server, c net.Conn, implicitTLS bool) *session {
	s := &session{srv: srv, conn: c, tls: implicitTLS, ctx: context.Background()}
	s.br = bufio.NewReaderSize(c, 1024)
	s.w = writer{Writer: bufio.NewWriterSize(c, 2048)}
	s.rd = proto.Reader{R: s.br, L: s.limits()}
	return s
}

// limits are the input limits of the session's state: before login a
// literal may not exceed MaxLiteralBeforeLogin (LOGIN and AUTHENTICATE
// need little), so an unauthenticated client cannot pin MaxLiteral bytes.
func (s *session) limits() proto.Limits {
	c := s.srv.cfg
	lit, slack := c.MaxLiteral, int64(1<<20)
	if s.state == stateNotAuth {
		lit, slack = min(lit, c.MaxLiteralBeforeLogin), int64(c.MaxLineLength)
	}
	return proto.Limits{MaxLine: c.MaxLineLength, MaxLiteral: lit,
		MaxCommand: lit + slack, DiscardCap: 2*lit + slack}
}

func (s *session) serve() {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			s.srv.log.Error("imap session panic", "panic", r)
		}
		s.srv.log.Debug("imap session closed", "remote", connlimit.RemoteIP(s.conn).String(), "account", s.acct.ID,
			"tls", s.tls, "duration", time.Since(start).Round(time.Millisecond))
		if s.unwatch != nil {
			s.unwatch()
		}
		s.conn.Close()
	}()
	s.w.WriteString("* OK [CAPABILITY ")
	s.w.WriteString(s.capabilities())
	s.w.WriteString("] Stoa IMAP ready\r\n")
	if s.flush() != nil {
		return
	}
	for s.state != stateLogout {
		s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.IdleTimeout))
		raw, err := s.rd.ReadCommand(s.continuation)
		if err != nil {
			if !s.readError(raw, err) {
				return
			}
			continue
		}
		if err := s.handle(raw); err != nil {
			return
		}
	}
}

// continuation answers a synchronizing literal announcement. An APPEND
// message above APPENDLIMIT is refused before the client sends it
// (RFC 7889 §4).
func (s *session) continuation(partial []byte, n int64) error {
	if n > s.srv.store.Config().MaxMessageSize && isAppend(partial) {
		return &proto.LiteralError{Partial: partial, Sync: true, Size: n}
	}
	s.w.WriteString("+ Ready for literal data\r\n")
	return s.flush()
}

func isAppend(cmd []byte) bool {
	tag := proto.Tag(cmd)
	rest := cmd[min(len(tag)+1, len(cmd)):]
	return len(rest) >= 7 && strings.EqualFold(string(rest[:7]), "APPEND ")
}

func (s *session) flush() error {
	s.conn.SetWriteDeadline(time.Now().Add(5 * time.Minute))
	return s.w.Flush()
}

// readError answers a command that could not be read; false closes.
func (s *session) readError(raw []byte, err error) bool {
	var le *proto.LiteralError
	switch {
	case errors.As(err, &le):
		tag := proto.Tag(le.Partial)
		if tag == "" {
			tag = "*"
		}
		s.srv.m.errors.WithLabelValues("literal", "NO").Inc()
		s.w.WriteString(tag + " NO [TOOBIG] Literal too large\r\n")
		return s.flush() == nil
	case err == proto.ErrLineTooLong:
		tag := proto.Tag(raw)
		if tag == "" {
			tag = "*"
		}
		s.srv.m.errors.WithLabelValues("line", "BAD").Inc()
		s.w.WriteString(tag + " BAD [TOOBIG] Command line too long\r\n")
		return s.flush() == nil
	case err == proto.ErrFatal:
		s.w.WriteString("* BYE [TOOBIG] Input too large\r\n")
		s.flush()
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.w.WriteString("* BYE Idle timeout\r\n")
		s.flush()
	}
	return false
}

// handler runs one command. Returning a *respErr answers NO/BAD; a store
// error is mapped; errLogout or an I/O error closes the connection.
type handler struct {
	fn     func(s *session, c *proto.Command) error
	states []state
	// expunge: EXPUNGE responses may be sent while it runs (RFC 9051 §7.5.1)
	expunge bool
}

var anyState = []state{stateNotAuth, stateAuth, stateSelected}
var authed = []state{stateAuth, stateSelected}
var selState = []state{stateSelected}

var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		"CAPABILITY":   {cmdCapability, anyState, true},
		"NOOP":         {cmdNoop, anyState, true},
		"LOGOUT":       {cmdLogout, anyState, true},
		"ID":           {cmdID, anyState, true},
		"STARTTLS":     {cmdStartTLS, []state{stateNotAuth}, true},
		"LOGIN":        {cmdLogin, []state{stateNotAuth}, true},
		"AUTHENTICATE": {cmdAuthenticate, []state{stateNotAuth}, true},
		"ENABLE":       {cmdEnable, authed, true},
		"SELECT":       {cmdSelect, authed, true},
		"EXAMINE":      {cmdSelect, authed, true},
		"CREATE":       {cmdCreate, authed, true},
		"DELETE":       {cmdDelete, authed, true},
		"RENAME":       {cmdRename, authed, true},
		"SUBSCRIBE":    {cmdSubscribe, authed, true},
		"UNSUBSCRIBE":  {cmdSubscribe, authed, true},
		"LIST":         {cmdList, authed, true},
		"LSUB":         {cmdList, authed, true},
		"NAMESPACE":    {cmdNamespace, authed, true},
		"STATUS":       {cmdStatus, authed, true},
		"APPEND":       {cmdAppend, authed, true},
		"IDLE":         {cmdIdle, authed, true},
		"GETQUOTA":     {cmdGetQuota, authed, true},
		"GETQUOTAROOT": {cmdGetQuotaRoot, authed, true},
		"SETQUOTA":     {cmdSetQuota, authed, true},
		"CHECK":        {cmdNoop, selState, true},
		"CLOSE":        {cmdClose, selState, true},
		"UNSELECT":     {cmdClose, selState, true},
		"EXPUNGE":      {cmdExpunge, selState, true},
		"SEARCH":       {cmdSearch, selState, false},
		"FETCH":        {cmdFetch, selState, false},
		"STORE":        {cmdStore, selState, false},
		"COPY":         {cmdCopy, selState, true},
		"MOVE":         {cmdCopy, selState, true},
		"SORT":         {cmdSort, selState, false},
		"THREAD":       {cmdThread, selState, false},
	}
}

func (s *session) handle(raw []byte) error {
	c, err := proto.ParseCommand(raw)
	if c == nil {
		s.srv.m.errors.WithLabelValues("unknown", "BAD").Inc()
		s.w.WriteString("* BAD [CLIENTBUG] Invalid tag\r\n")
		return s.flush()
	}
	h, known := handlers[c.Name]
	metricName := c.Name
	if !known {
		metricName = "unknown"
	} else if c.UID {
		metricName = "UID " + c.Name
	}
	s.cmdName = metricName
	s.srv.m.commands.WithLabelValues(metricName).Inc()
	s.okCode, s.okText = "", ""
	start := time.Now()
	switch {
	case err != nil:
		var se *proto.SyntaxError
		if errors.As(err, &se) {
			err = bad("Syntax error: " + se.Msg)
		}
	case !known:
		err = bad("Unknown command")
	case !inState(s.state, h.states):
		err = bad("Command not allowed in this state")
	default:
		allowExp := h.expunge || c.UID
		if s.state == stateSelected {
			if err = s.sync(allowExp); err != nil {
				break
			}
		}
		if c.Name != "IDLE" {
			// Bounds the work of one command (a scan of a huge mailbox);
			// the client may have gone, nothing else would stop it.
			ctx, cancel := context.WithTimeout(context.Background(), s.srv.cfg.CommandTimeout)
			s.ctx = ctx
			err = h.fn(s, c)
			s.ctx = context.Background()
			cancel()
		} else {
			err = h.fn(s, c)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = no("LIMIT", "The command took longer than "+s.srv.cfg.CommandTimeout.String())
		}
		if err == nil && s.state == stateSelected {
			err = s.sync(allowExp)
		}
	}
	if err == errLogout {
		s.flush()
		return err
	}
	if err == errSilentOK {
		return s.flush()
	}
	if d := time.Since(start); d > 5*time.Second {
		s.srv.log.Warn("slow imap command", "command", metricName, "took", d)
	}
	return s.finish(c.Tag, metricName, err)
}

func inState(st state, ok []state) bool {
	for _, x := range ok {
		if x == st {
			return true
		}
	}
	return false
}

// finish writes the tagged response.
func (s *session) finish(tag, name string, err error) error {
	if err == nil {
		s.w.WriteString(tag)
		s.w.WriteString(" OK ")
		if s.okCode != "" {
			s.w.WriteString("[" + s.okCode + "] ")
		}
		if s.okText == "" {
			s.okText = "Completed"
		}
		s.w.WriteString(s.okText)
		s.w.WriteString("\r\n")
		return s.flush()
	}
	var re *respErr
	if !errors.As(err, &re) {
		if isIOError(err) {
			return err
		}
		re = s.mapStoreError(err)
	}
	s.srv.m.errors.WithLabelValues(name, re.status).Inc()
	s.w.WriteString(tag + " " + re.status + " ")
	if re.code != "" {
		s.w.WriteString("[" + re.code + "] ")
	}
	s.w.WriteString(re.text + "\r\n")
	return s.flush()
}

func isIOError(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF)
}

// mapStoreError turns a storage error into an RFC 5530 response code.
func (s *session) mapStoreError(err error) *respErr {
	switch {
	case errors.Is(err, storage.ErrNoSuchMailbox):
		return &respErr{"NO", "NONEXISTENT", "No such mailbox"}
	case errors.Is(err, storage.ErrExists):
		return &respErr{"NO", "ALREADYEXISTS", "Mailbox already exists"}
	case errors.Is(err, storage.ErrHasChildren):
		return &respErr{"NO", "HASCHILDREN", "Mailbox has children"}
	case errors.Is(err, storage.ErrCannot):
		return &respErr{"NO", "CANNOT", "Operation not permitted"}
	case errors.Is(err, storage.ErrOverQuota):
		return &respErr{"NO", "OVERQUOTA", "Quota exceeded"}
	case errors.Is(err, storage.ErrTooLarge):
		return &respErr{"NO", "TOOBIG", "Message too large"}
	case errors.Is(err, storage.ErrInvalidName):
		return &respErr{"NO", "CANNOT", "Invalid mailbox name"}
	case errors.Is(err, storage.ErrInvalidFlag):
		return &respErr{"BAD", "CLIENTBUG", "Invalid flag"}
	case errors.Is(err, storage.ErrConflict):
		return &respErr{"NO", "INUSE", "Try again"}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &respErr{"NO", "UNAVAILABLE", "Try again later"}
	}
	s.srv.log.Error("imap command failed", "command", s.cmdName, "account", s.acct.ID, "err", err)
	return &respErr{"NO", "SERVERBUG", "Internal error"}
}

// capabilities lists what is advertised in the current state (RFC 9051 §7.2.2).
func (s *session) capabilities() string {
	caps := "IMAP4rev2 IMAP4rev1"
	canAuth := s.tls || s.srv.cfg.AllowInsecureAuth
	if s.state == stateNotAuth {
		if !s.tls && s.srv.tls != nil {
			caps += " STARTTLS"
		}
		if canAuth {
			caps += " AUTH=PLAIN SASL-IR"
		} else {
			caps += " LOGINDISABLED"
		}
		return caps + " LITERAL+ ID ENABLE"
	}
	return caps + " LITERAL+ ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN SPECIAL-USE CREATE-SPECIAL-USE" +
		" LIST-EXTENDED LIST-STATUS STATUS=SIZE ESEARCH SEARCHRES WITHIN CONDSTORE QRESYNC UTF8=ACCEPT BINARY" +
		" QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE SORT THREAD=REFERENCES THREAD=ORDEREDSUBJECT MULTIAPPEND" +
		" APPENDLIMIT=" + itoa(s.srv.store.Config().MaxMessageSize)
}

func cmdCapability(s *session, c *proto.Command) error {
	if len(c.Args) != 0 {
		return bad("CAPABILITY takes no arguments")
	}
	s.w.WriteString("* CAPABILITY " + s.capabilities() + "\r\n")
	return nil
}

func cmdNoop(s *session, c *proto.Command) error {
	if len(c.Args) != 0 {
		return bad("No arguments expected")
	}
	s.lastPoll = time.Time{} // NOOP always looks for changes (RFC 9051 §6.1.2)
	return nil
}

func cmdLogout(s *session, c *proto.Command) error {
	s.w.WriteString("* BYE Logging out\r\n")
	s.w.WriteString(c.Tag + " OK Logout completed\r\n")
	s.state = stateLogout
	return errLogout
}

// cmdID answers RFC 2971 ID; the client's fields are not echoed.
func cmdID(s *session, c *proto.Command) error {
	if len(c.Args) != 1 || (!c.Args[0].IsNIL() && c.Args[0].Kind != proto.List) {
		return bad("ID expects NIL or a list")
	}
	if c.Args[0].Kind == proto.List && (len(c.Args[0].L)%2 != 0 || len(c.Args[0].L) > 60) {
		return bad("ID list must hold field-value pairs")
	}
	s.w.WriteString(`* ID ("name" "Stoa" "vendor" "Stoa")` + "\r\n")
	return nil
}

func cmdStartTLS(s *session, c *proto.Command) error {
	if s.tls || s.srv.tls == nil {
		return bad("TLS already active or not available")
	}
	if s.br.Buffered() > 0 {
		// Data pipelined after STARTTLS would be injected into the TLS
		// session (CVE-2011-0411 class); refuse it.
		s.w.WriteString("* BYE [CLIENTBUG] Data after STARTTLS\r\n")
		s.flush()
		return errLogout
	}
	s.w.WriteString(c.Tag + " OK Begin TLS negotiation now\r\n")
	if err := s.flush(); err != nil {
		return err
	}
	tc := tls.Server(s.conn, s.srv.tls)
	tc.SetDeadline(time.Now().Add(s.srv.cfg.TLSHandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		return errLogout
	}
	tc.SetDeadline(time.Time{})
	s.conn, s.tls = tc, true
	s.br.Reset(tc)
	s.w.Reset(tc)
	return errSilentOK
}

// errSilentOK: the handler wrote its own tagged response.
var errSilentOK = errors.New("already answered")

func (s *session) canAuth() error {
	if !s.tls && !s.srv.cfg.AllowInsecureAuth {
		return no("PRIVACYREQUIRED", "Use STARTTLS first")
	}
	return nil
}

func cmdLogin(s *session, c *proto.Command) error {
	if err := s.canAuth(); err != nil {
		return err
	}
	if len(c.Args) != 2 {
		return bad("LOGIN expects user and password")
	}
	user, ok1 := c.Args[0].AString()
	pass, ok2 := c.Args[1].AString()
	if !ok1 || !ok2 {
		return bad("LOGIN expects user and password")
	}
	return s.login(user, pass)
}

func (s *session) login(user, pass string) error {
	a, err := s.srv.store.Authenticate(s.ctx, user, pass)
	if err != nil {
		if !errors.Is(err, storage.ErrAuthFailed) && !errors.Is(err, storage.ErrAccountDisabled) {
			return err
		}
		s.fails++
		s.srv.m.authFail.Inc()
		s.srv.log.Info("imap login failed", "user", user, "remote", connlimit.RemoteIP(s.conn).String(), "failures", s.fails)
		time.Sleep(s.srv.cfg.AuthFailureDelay * time.Duration(1<<min(s.fails-1, 5)))
		if s.fails >= s.srv.cfg.MaxAuthFailures {
			s.w.WriteString("* BYE Too many failed logins\r\n")
			return errLogout
		}
		return no("AUTHENTICATIONFAILED", "Invalid credentials")
	}
	s.acct = a
	s.state = stateAuth
	s.rd.L = s.limits()
	s.watch, s.unwatch = s.srv.store.Watch(a.ID)
	s.okCode = "CAPABILITY " + s.capabilities()
	s.okText = "Logged in"
	return nil
}

// cmdAuthenticate implements SASL PLAIN (RFC 4616) with SASL-IR (RFC 4959).
func cmdAuthenticate(s *session, c *proto.Command) error {
	if len(c.Args) < 1 || len(c.Args) > 2 || c.Args[0].Kind != proto.Atom {
		return bad("AUTHENTICATE expects a mechanism")
	}
	if !strings.EqualFold(c.Args[0].S, "PLAIN") {
		return no("CANNOT", "Unsupported mechanism")
	}
	if err := s.canAuth(); err != nil {
		return err
	}
	var resp string
	if len(c.Args) == 2 {
		r, ok := c.Args[1].AString()
		if !ok {
			return bad("Bad initial response")
		}
		resp = r
	} else {
		s.w.WriteString("+ \r\n")
		if err := s.flush(); err != nil {
			return err
		}
		line, err := s.rd.ReadLine(nil)
		if err == proto.ErrLineTooLong {
			return bad("Response too long")
		} else if err != nil {
			return err
		}
		resp = string(line)
	}
	if resp == "*" {
		return bad("Authentication cancelled")
	}
	if resp == "=" {
		resp = ""
	}
	dec, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		return bad("Invalid base64")
	}
	parts := bytes.Split(dec, []byte{0})
	if len(parts) != 3 {
		return bad("Invalid PLAIN response")
	}
	authz, user, pass := string(parts[0]), string(parts[1]), string(parts[2])
	if authz != "" && !strings.EqualFold(authz, user) {
		return no("AUTHORIZATIONFAILED", "Cannot act as another user")
	}
	return s.login(user, pass)
}

// cmdEnable: RFC 5161; CONDSTORE, QRESYNC (RFC 7162 §3.2.3), UTF8=ACCEPT
// (RFC 6855 §3), IMAP4rev2 (RFC 9051 §6.3.1).
func cmdEnable(s *session, c *proto.Command) error {
	if len(c.Args) == 0 {
		return bad("ENABLE expects capabilities")
	}
	var on []string
	for _, a := range c.Args {
		if a.Kind != proto.Atom {
			return bad("ENABLE expects atoms")
		}
		switch strings.ToUpper(a.S) {
		case "CONDSTORE":
			if !s.condstore {
				on = append(on, "CONDSTORE")
			}
			s.condstore = true
		case "QRESYNC":
			if !s.qresync {
				on = append(on, "QRESYNC")
			}
			s.qresync, s.condstore = true, true
		case "UTF8=ACCEPT":
			if !s.w.utf8 {
				on = append(on, "UTF8=ACCEPT")
			}
			s.w.utf8 = true
		case "IMAP4REV2":
			if !s.rev2 {
				on = append(on, "IMAP4rev2")
			}
			s.rev2 = true
		}
	}
	s.w.WriteString("* ENABLED")
	for _, x := range on {
		s.w.WriteString(" " + x)
	}
	s.w.WriteString("\r\n")
	return nil
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
