package proto

import (
	"strings"
)

// Kind is the syntactic kind of a Value.
type Kind uint8

const (
	Atom    Kind = iota + 1 // atom, number, sequence set, NIL
	Quoted                  // quoted string
	Literal                 // literal or literal8 (RFC 3516)
	List                    // parenthesized list
)

// Value is one argument of a command.
type Value struct {
	Kind Kind
	S    string  // atom text or quoted string
	B    []byte  // literal bytes (a slice of the command buffer)
	L    []Value // list elements
	Bin  bool    // literal8 (~{n})
}

// IsString reports a quoted string or literal.
func (v Value) IsString() bool { return v.Kind == Quoted || v.Kind == Literal }

// Str returns the text of an atom, quoted string or literal.
func (v Value) Str() string {
	if v.Kind == Literal {
		return string(v.B)
	}
	return v.S
}

// AString returns an astring (RFC 9051 §9): atom or string.
func (v Value) AString() (string, bool) {
	switch v.Kind {
	case Atom, Quoted:
		return v.Str(), true
	case Literal: // literal8 only where the grammar allows it (RFC 3516 §4.3: APPEND)
		return v.Str(), !v.Bin
	}
	return "", false
}

// IsNIL reports the atom NIL.
func (v Value) IsNIL() bool { return v.Kind == Atom && strings.EqualFold(v.S, "NIL") }

// Command is a parsed command line.
type Command struct {
	Tag  string
	Name string // upper case; "FETCH" for "UID FETCH" with UID set
	UID  bool
	Args []Value
}

// SyntaxError describes bad input without quoting it (responses never echo
// client data).
type SyntaxError struct{ Msg string }

func (e *SyntaxError) Error() string { return e.Msg }

func syntax(msg string) error { return &SyntaxError{Msg: msg} }

const maxDepth = 32    // list nesting
const maxArgs = 100000 // values in one command

// IsTagChar reports a tag character: ASTRING-CHAR except "+" (RFC 9051 §9).
func IsTagChar(c byte) bool {
	return c > ' ' && c < 0x7f && strings.IndexByte(`(){%*"\+`, c) < 0
}

// Tag returns the tag at the start of a raw command, or "" if invalid.
func Tag(b []byte) string {
	i := 0
	for i < len(b) && i < 64 && IsTagChar(b[i]) && b[i] != ']' {
		i++
	}
	if i == 0 || i == 64 || (i < len(b) && b[i] != ' ') || i == len(b) {
		return ""
	}
	return string(b[:i])
}

// ParseCommand parses a command read by Reader.ReadCommand.
func ParseCommand(b []byte) (*Command, error) {
	tag := Tag(b)
	if tag == "" {
		return nil, syntax("invalid tag")
	}
	p := &parser{b: b, i: len(tag) + 1}
	name := p.word()
	if name == "" {
		return &Command{Tag: tag}, syntax("missing command")
	}
	c := &Command{Tag: tag, Name: strings.ToUpper(name)}
	if c.Name == "UID" {
		if !p.sp() {
			return c, syntax("missing UID command")
		}
		sub := strings.ToUpper(p.word())
		switch sub {
		case "FETCH", "STORE", "SEARCH", "COPY", "MOVE", "EXPUNGE", "SORT", "THREAD":
		default:
			return c, syntax("unknown UID command")
		}
		c.Name, c.UID = sub, true
	}
	n := 0
	for p.i < len(p.b) {
		if !p.sp() {
			return c, syntax("expected space")
		}
		if p.i == len(p.b) { // tolerate one trailing space
			break
		}
		v, err := p.value(0, &n)
		if err != nil {
			return c, err
		}
		c.Args = append(c.Args, v)
	}
	return c, nil
}

type parser struct {
	b []byte
	i int
}

func (p *parser) sp() bool {
	if p.i < len(p.b) && p.b[p.i] == ' ' {
		p.i++
		return true
	}
	return false
}

func (p *parser) word() string {
	s := p.i
	for p.i < len(p.b) && isAlnum(p.b[p.i]) {
		p.i++
	}
	return string(p.b[s:p.i])
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (p *parser) value(depth int, n *int) (Value, error) {
	*n++
	if *n > maxArgs {
		return Value{}, syntax("too many arguments")
	}
	if p.i >= len(p.b) {
		return Value{}, syntax("missing argument")
	}
	switch c := p.b[p.i]; {
	case c == '(':
		if depth >= maxDepth {
			return Value{}, syntax("lists nested too deeply")
		}
		p.i++
		v := Value{Kind: List}
		for {
			if p.i >= len(p.b) {
				return Value{}, syntax("unterminated list")
			}
			if p.b[p.i] == ')' {
				p.i++
				return v, nil
			}
			if len(v.L) > 0 && !p.sp() {
				return Value{}, syntax("expected space in list")
			}
			e, err := p.value(depth+1, n)
			if err != nil {
				return Value{}, err
			}
			v.L = append(v.L, e)
		}
	case c == '"':
		return p.quoted()
	case c == '{':
		return p.literal(false)
	case c == '~' && p.i+1 < len(p.b) && p.b[p.i+1] == '{':
		p.i++
		return p.literal(true)
	default:
		return p.atom()
	}
}

func (p *parser) quoted() (Value, error) {
	p.i++
	var sb strings.Builder
	for p.i < len(p.b) {
		c := p.b[p.i]
		p.i++
		switch c {
		case '"':
			return Value{Kind: Quoted, S: sb.String()}, nil
		case '\\':
			if p.i >= len(p.b) || (p.b[p.i] != '"' && p.b[p.i] != '\\') {
				return Value{}, syntax("bad escape in quoted string")
			}
			sb.WriteByte(p.b[p.i])
			p.i++
		case '\r', '\n', 0:
			return Value{}, syntax("bad character in quoted string")
		default:
			sb.WriteByte(c)
		}
	}
	return Value{}, syntax("unterminated quoted string")
}

func (p *parser) literal(bin bool) (Value, error) {
	p.i++ // '{'
	var n int64
	digits := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		n = n*10 + int64(p.b[p.i]-'0')
		digits++
		p.i++
		if digits > 18 {
			return Value{}, syntax("literal size too large")
		}
	}
	if digits == 0 {
		return Value{}, syntax("bad literal")
	}
	if p.i < len(p.b) && p.b[p.i] == '+' {
		p.i++
	}
	if p.i+3 > len(p.b) || p.b[p.i] != '}' || p.b[p.i+1] != '\r' || p.b[p.i+2] != '\n' {
		return Value{}, syntax("bad literal")
	}
	p.i += 3
	if int64(len(p.b)-p.i) < n {
		return Value{}, syntax("short literal")
	}
	v := Value{Kind: Literal, B: p.b[p.i : p.i+int(n) : p.i+int(n)], Bin: bin}
	p.i += int(n)
	if !bin && indexByte(v.B, 0) >= 0 {
		return Value{}, syntax("NUL in literal")
	}
	return v, nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// atom reads an atom; inside "[...]" spaces and parentheses are allowed so
// that BODY[HEADER.FIELDS (A B)]<0.10> is one value (RFC 9051 §9 section).
func (p *parser) atom() (Value, error) {
	s := p.i
	depth := 0
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '[' {
			depth++
		} else if c == ']' && depth > 0 {
			depth--
		} else if depth == 0 && (c == ' ' || c == '(' || c == ')' || c == '"' || c == '{') {
			break
		} else if c < ' ' || c >= 0x7f {
			if c < 0x80 || depth > 0 {
				return Value{}, syntax("bad character in atom")
			}
		}
		p.i++
	}
	if depth != 0 {
		return Value{}, syntax("unterminated section")
	}
	if p.i == s {
		return Value{}, syntax("empty atom")
	}
	return Value{Kind: Atom, S: string(p.b[s:p.i])}, nil
}
