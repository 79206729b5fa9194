package indexer

import "strings"

// Op is the kind of a Query node.
type Op uint8

// Query operators. The leaf keys are the IMAP SEARCH text keys
// (RFC 9051 §6.4.4); see ADR 0008 for their word-phrase semantics.
const (
	OpAnd     Op = iota // every child matches (no children: all messages)
	OpOr                // some child matches
	OpNot               // Children[0] does not match
	OpText              // TEXT: header or body
	OpBody              // BODY: body text, HTML text, attachment names
	OpSubject           // SUBJECT
	OpFrom              // FROM: display names and addresses
	OpTo                // TO
	OpCc                // CC
	OpBcc               // BCC
	OpHeader            // HEADER Name Value; empty Value: has the field
)

// Query is a small tree of IMAP SEARCH text keys. Values are client input
// and are only ever analysed into terms; they never become query syntax.
type Query struct {
	Op       Op
	Name     string // OpHeader: the field name
	Value    string
	Children []Query
}

// Constructors for the IMAP server's adapter.
func And(qs ...Query) Query           { return Query{Op: OpAnd, Children: qs} }
func Or(qs ...Query) Query            { return Query{Op: OpOr, Children: qs} }
func Not(q Query) Query               { return Query{Op: OpNot, Children: []Query{q}} }
func Text(v string) Query             { return Query{Op: OpText, Value: v} }
func Body(v string) Query             { return Query{Op: OpBody, Value: v} }
func Subject(v string) Query          { return Query{Op: OpSubject, Value: v} }
func From(v string) Query             { return Query{Op: OpFrom, Value: v} }
func To(v string) Query               { return Query{Op: OpTo, Value: v} }
func Cc(v string) Query               { return Query{Op: OpCc, Value: v} }
func Bcc(v string) Query              { return Query{Op: OpBcc, Value: v} }
func Header(name, value string) Query { return Query{Op: OpHeader, Name: name, Value: value} }

// Fields lists the document fields a leaf key searches (phrase in any of
// them). OpHeader searches header_terms with prefixed terms instead.
func (op Op) Fields() []string {
	switch op {
	case OpText:
		return []string{"headers", "body", "html", "attachment_names"}
	case OpBody:
		return []string{"body", "html", "attachment_names"}
	case OpSubject:
		return []string{"subject"}
	case OpFrom:
		return []string{"from"}
	case OpTo:
		return []string{"to"}
	case OpCc:
		return []string{"cc"}
	case OpBcc:
		return []string{"bcc"}
	}
	return nil
}

// Match evaluates q on d in process, with the same analysis as the index:
// Search uses it for changes the indexer has not applied yet.
func Match(d *Doc, q Query) bool { return NewMatcher(d).Match(q) }

// Matcher evaluates queries on one document, analysing each field once
// however many queries it answers (a SEARCH with many text keys). It is not
// safe for concurrent use until Freeze.
type Matcher struct {
	d      *Doc
	cache  map[string][][]string
	frozen bool
}

// NewMatcher returns a Matcher for d.
func NewMatcher(d *Doc) *Matcher { return &Matcher{d: d, cache: map[string][][]string{}} }

// Match reports whether the document matches q.
func (m *Matcher) Match(q Query) bool { return m.match(q) }

// matchFields are every field a query reads.
var matchFields = []string{"header_terms", "headers", "body", "html", "attachment_names", "subject", "from", "to", "cc", "bcc"}

// Freeze analyses every field now; the Matcher is read-only from then on
// and safe for concurrent use.
func (m *Matcher) Freeze() *Matcher {
	for _, f := range matchFields {
		m.field(f)
	}
	m.frozen = true
	return m
}

// size is about the memory the analysed fields hold (for caches).
func (m *Matcher) size() int {
	n := 0
	for _, vs := range m.cache {
		for _, v := range vs {
			for _, t := range v {
				n += len(t) + 16
			}
		}
	}
	return n
}

func (m *Matcher) field(name string) [][]string {
	if v, ok := m.cache[name]; ok || m.frozen {
		return v
	}
	var vals []string
	d := m.d
	switch name {
	case "header_terms":
		var out [][]string
		for _, h := range d.HeaderTerms {
			out = append(out, strings.Fields(h))
		}
		m.cache[name] = out
		return out
	case "headers":
		vals = d.Headers
	case "body":
		vals = []string{d.Body}
	case "html":
		vals = []string{d.HTML}
	case "attachment_names":
		vals = d.Attachments
	case "subject":
		vals = []string{d.Subject}
	case "from":
		vals = d.From
	case "to":
		vals = d.To
	case "cc":
		vals = d.Cc
	case "bcc":
		vals = d.Bcc
	}
	out := make([][]string, 0, len(vals))
	for _, v := range vals {
		out = append(out, Analyze(v))
	}
	m.cache[name] = out
	return out
}

func (m *Matcher) match(q Query) bool {
	switch q.Op {
	case OpAnd:
		for _, c := range q.Children {
			if !m.match(c) {
				return false
			}
		}
		return true
	case OpOr:
		for _, c := range q.Children {
			if m.match(c) {
				return true
			}
		}
		return false
	case OpNot:
		return len(q.Children) == 1 && !m.match(q.Children[0])
	case OpHeader:
		if q.Value == "" {
			n := strings.ToLower(q.Name)
			for _, h := range m.d.HeaderNames {
				if h == n {
					return true
				}
			}
			return false
		}
		return m.phrase([]string{"header_terms"}, HeaderQueryTerms(q.Name, q.Value))
	}
	if q.Value == "" {
		return true // every string contains ""
	}
	return m.phrase(q.Op.Fields(), Analyze(q.Value))
}

func (m *Matcher) phrase(fields []string, terms []string) bool {
	if len(terms) == 0 {
		return false
	}
	for _, f := range fields {
		for _, v := range m.field(f) {
			if containsPhrase(v, terms) {
				return true
			}
		}
	}
	return false
}
