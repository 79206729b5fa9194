package mailmeta

import "time"

// Limits bounds the work Parse and ExtractText do on one message.
// A zero or negative field takes its default.
type Limits struct {
	MaxDepth       int // MIME nesting depth; the top-level part has depth 0 (default 20)
	MaxParts       int // total MIME parts, counting every Part in the tree (default 1000)
	MaxHeaders     int // header fields kept per part (default 1000)
	MaxHeaderBytes int // bytes of one part's header block that are read for fields (default 256 KiB)
	MaxPreview     int // runes of Meta.Preview (default 256)
}

// DefaultLimits returns the limits used when a field of Limits is zero.
func DefaultLimits() Limits {
	return Limits{
		MaxDepth:       20,
		MaxParts:       1000,
		MaxHeaders:     1000,
		MaxHeaderBytes: 256 << 10,
		MaxPreview:     256,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxParts <= 0 {
		l.MaxParts = d.MaxParts
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = d.MaxHeaders
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxPreview <= 0 {
		l.MaxPreview = d.MaxPreview
	}
	return l
}

// Address is one element of an IMAP ENVELOPE address list
// (RFC 9051 §7.5.2, RFC 3501 §7.4.2). Strings are raw: comments and the
// quotes of the display name are removed, RFC 2047 encoded words stay
// encoded; Mailbox keeps quotes only where RFC 5322 §3.4.1 needs them.
//
// Group syntax (RFC 5322 §3.4) is represented as in IMAP:
//   - group start: GroupStart=true, Mailbox=group name, all else empty
//     (IMAP: (NIL NIL "name" NIL));
//   - group end: GroupEnd=true, all else empty (IMAP: (NIL NIL NIL NIL)).
//
// For an ordinary address Host may be "" (no domain given); the IMAP layer
// must then send "" rather than NIL, since a NIL host means a group.
type Address struct {
	Name       string `json:"n,omitempty"`
	Adl        string `json:"a,omitempty"` // obsolete source route, "@a,@b" (RFC 5322 §4.4)
	Mailbox    string `json:"m,omitempty"`
	Host       string `json:"h,omitempty"`
	GroupStart bool   `json:"gs,omitempty"`
	GroupEnd   bool   `json:"ge,omitempty"`
}

// Envelope holds the fields of an IMAP ENVELOPE (RFC 9051 §7.5.2). Strings
// are raw header values: unfolded, trimmed, not decoded. The first field of
// each name wins. Sender and ReplyTo equal From when absent or empty.
type Envelope struct {
	Date      string    `json:"d,omitempty"`
	Subject   string    `json:"s,omitempty"`
	From      []Address `json:"f,omitempty"`
	Sender    []Address `json:"se,omitempty"`
	ReplyTo   []Address `json:"rt,omitempty"`
	To        []Address `json:"t,omitempty"`
	Cc        []Address `json:"c,omitempty"`
	Bcc       []Address `json:"b,omitempty"`
	InReplyTo string    `json:"ir,omitempty"`
	MessageID string    `json:"id,omitempty"`
}

// Param is a media type or disposition parameter. Keys are lower-case,
// order is that of the header; RFC 2231 continuations and charsets are
// decoded into Value (UTF-8). RFC 2047 words in values are left as sent.
type Param struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// Part is one MIME entity.
//
// Type, Subtype, Encoding and Disposition are lower-case (the IMAP layer
// upper-cases what it wants to). Encoding defaults to "7bit" (RFC 2045 §6.1).
// A part without Content-Type is text/plain with charset=us-ascii, or
// message/rfc822 inside multipart/digest (RFC 2045 §5.2, RFC 2046 §5.1.5).
//
// Offsets index the raw message:
//   - raw[HeaderStart:BodyStart] is the MIME header including the empty line
//     (BODY[n.MIME], or BODY[HEADER] for a message);
//   - raw[BodyStart:End] is the body (BODY[n]); for message/rfc822,
//     raw[Message.BodyStart:Message.End] is BODY[n.TEXT] and
//     raw[Message.HeaderStart:Message.BodyStart] is BODY[n.HEADER].
//
// End is before the line break that precedes the next boundary delimiter
// (RFC 2046 §5.1.1: that CRLF belongs to the delimiter).
type Part struct {
	Type              string    `json:"t"`
	Subtype           string    `json:"st"`
	Params            []Param   `json:"p,omitempty"`
	ID                string    `json:"id,omitempty"`
	Description       string    `json:"de,omitempty"`
	Encoding          string    `json:"e,omitempty"`
	Size              int64     `json:"sz"`
	Lines             int64     `json:"l,omitempty"` // text/*, message/rfc822, message/global: LF count, +1 for an unterminated last line
	MD5               string    `json:"md5,omitempty"`
	Disposition       string    `json:"di,omitempty"`
	DispositionParams []Param   `json:"dp,omitempty"`
	Language          []string  `json:"la,omitempty"`
	Location          string    `json:"lo,omitempty"`
	Children          []*Part   `json:"c,omitempty"`
	Envelope          *Envelope `json:"en,omitempty"`
	Message           *Part     `json:"m,omitempty"`
	HeaderStart       int64     `json:"hs"`
	BodyStart         int64     `json:"bs"`
	End               int64     `json:"end"`
}

// Addr is a decoded address: Name is RFC 2047-decoded UTF-8 (the comment
// when there is no display name, as in "a@b (Name)"), Email is
// local-part@domain with quotes only where RFC 5322 §3.4.1 needs them.
type Addr struct {
	Name  string `json:"n,omitempty"`
	Email string `json:"e"`
}

// Attachment describes a leaf part shown to users as an attachment.
type Attachment struct {
	Name string `json:"n,omitempty"` // decoded file name (RFC 2231, or RFC 2047 as sent by many mailers)
	Type string `json:"t"`           // type/subtype
	Size int64  `json:"sz"`          // octets after transfer decoding
	Part string `json:"p"`           // IMAP section, "2" or "1.3" (RFC 9051 §6.4.5)
}

// HeaderField is one top-level header field; Value is raw, unfolded
// (RFC 5322 §2.2.3) and trimmed.
type HeaderField struct {
	Name  string `json:"n"`
	Value string `json:"v"`
}

// Meta is what Parse learns from one message.
type Meta struct {
	Size          int64         `json:"sz"`
	Envelope      Envelope      `json:"env"`
	Body          *Part         `json:"body"`
	MessageID     string        `json:"mid,omitempty"`  // RFC 5322 §3.6.4 msg-id without <>
	InReplyTo     []string      `json:"irt,omitempty"`  // msg-ids without <>, in order, deduplicated
	References    []string      `json:"refs,omitempty"` // same; over 100, the first and the last 99 are kept
	Subject       string        `json:"subj,omitempty"` // RFC 2047-decoded
	BaseSubject   string        `json:"bsubj,omitempty"`
	Date          time.Time     `json:"date"`
	From          []Addr        `json:"from,omitempty"`
	To            []Addr        `json:"to,omitempty"`
	Cc            []Addr        `json:"cc,omitempty"`
	Bcc           []Addr        `json:"bcc,omitempty"`
	ReplyTo       []Addr        `json:"rt,omitempty"` // Reply-To as sent, not defaulted to From
	Preview       string        `json:"prev,omitempty"`
	HasAttachment bool          `json:"att,omitempty"`
	Attachments   []Attachment  `json:"atts,omitempty"`
	Defects       []string      `json:"def,omitempty"`
	Headers       []HeaderField `json:"hdr,omitempty"`
}

// Text is the searchable text of a message.
type Text struct {
	Plain           string   // decoded text/* parts other than HTML, joined by "\n"
	HTML            string   // decoded text/html parts reduced to text
	AttachmentNames []string // file names of attachments, including those in enclosed messages
}
