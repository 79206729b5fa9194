// Package antispam is the hook between SMTP reception and delivery: a
// Checker looks at one message and returns a Verdict. Stoa ships only the
// no-op checker; filters (rspamd, a Bayes classifier...) plug in here.
package antispam

import (
	"context"
	"net"
)

// Action is what to do with a message.
type Action int

const (
	Accept Action = iota // deliver to the usual mailbox
	Junk                 // deliver to the recipient's Junk mailbox
	Reject               // refuse with 550 5.7.1 (RFC 3463 §3.8)
)

func (a Action) String() string {
	switch a {
	case Junk:
		return "junk"
	case Reject:
		return "reject"
	}
	return "accept"
}

// Header is one header field to prepend to the message.
type Header struct{ Name, Value string }

// Verdict is a checker's decision.
type Verdict struct {
	Action  Action
	Reason  string   // short, safe to show to the sender on Reject
	Headers []Header // e.g. X-Spam-Status; prepended on Accept and Junk
}

// Envelope is what the SMTP session knows about the message.
type Envelope struct {
	RemoteIP      net.IP
	Helo          string
	MailFrom      string   // "" for the null reverse-path
	Recipients    []string // as accepted at RCPT
	Authenticated string   // account id on submission, "" otherwise
	TLS           bool
	SPF           string // RFC 8601 result words: pass, fail, softfail, none...
	DKIM          string
	DMARC         string
}

// Checker decides about one message. header is the raw header block
// (up to and including the empty line); raw is the whole message as
// received. Implementations must be safe for concurrent use and must
// not keep raw after returning.
type Checker interface {
	Check(ctx context.Context, env Envelope, header, raw []byte) Verdict
}

// CheckerFunc adapts a function to Checker.
type CheckerFunc func(ctx context.Context, env Envelope, header, raw []byte) Verdict

// Check calls f.
func (f CheckerFunc) Check(ctx context.Context, env Envelope, header, raw []byte) Verdict {
	return f(ctx, env, header, raw)
}

// None accepts everything; it is the default.
var None Checker = CheckerFunc(func(context.Context, Envelope, []byte, []byte) Verdict { return Verdict{} })
