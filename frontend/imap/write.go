package imap

import (
	"bufio"
	"strconv"
	"unicode/utf8"

	"github.com/stoa-mail/stoa/frontend/imap/proto"
)

// writer renders response syntax (RFC 9051 §4, §9) onto a bufio.Writer.
type writer struct {
	*bufio.Writer
	utf8 bool // UTF8=ACCEPT enabled (RFC 6855): UTF-8 in quoted strings and mailbox names
}

func (w *writer) num(n uint64) {
	var b [20]byte
	w.Write(strconv.AppendUint(b[:0], n, 10))
}

func (w *writer) sp() { w.WriteByte(' ') }

// quotable reports whether s can be sent as a quoted string.
func (w *writer) quotable(s string) bool {
	if len(s) > 4096 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 || c == '\r' || c == '\n' || (c >= 0x80 && !w.utf8) {
			return false
		}
	}
	return !w.utf8 || utf8.ValidString(s)
}

// str writes an IMAP string: quoted when possible, else a literal.
func (w *writer) str(s string) {
	if !w.quotable(s) {
		w.literalStr(s)
		return
	}
	w.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			w.WriteByte('\\')
		}
		w.WriteByte(s[i])
	}
	w.WriteByte('"')
}

// nstr writes NIL for "" and a string otherwise.
func (w *writer) nstr(s string) {
	if s == "" {
		w.WriteString("NIL")
		return
	}
	w.str(s)
}

func (w *writer) literalStr(s string) {
	w.WriteByte('{')
	w.num(uint64(len(s)))
	w.WriteString("}\r\n")
	w.WriteString(s)
}

// literal writes bytes as a literal; binary uses literal8 (RFC 3516 §4.2).
func (w *writer) literal(b []byte, binary bool) {
	if binary {
		w.WriteByte('~')
	}
	w.WriteByte('{')
	w.num(uint64(len(b)))
	w.WriteString("}\r\n")
	w.Write(b)
}

// mailbox writes a mailbox name: modified UTF-7 unless UTF8=ACCEPT
// (RFC 3501 §5.1.3, RFC 6855 §3).
func (w *writer) mailbox(name string) {
	if name == "INBOX" {
		w.WriteString("INBOX")
		return
	}
	if !w.utf8 {
		name = proto.EncodeUTF7(name)
	}
	w.str(name)
}

// numSet writes a compact sequence set of ascending numbers.
func (w *writer) numSet(ns []uint32) {
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && ns[j+1] == ns[j]+1 {
			j++
		}
		if i > 0 {
			w.WriteByte(',')
		}
		w.num(uint64(ns[i]))
		if j > i {
			w.WriteByte(':')
			w.num(uint64(ns[j]))
		}
		i = j + 1
	}
}

func numSetString(ns []uint32) string {
	var b []byte
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && ns[j+1] == ns[j]+1 {
			j++
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(ns[i]), 10)
		if j > i {
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(ns[j]), 10)
		}
		i = j + 1
	}
	return string(b)
}
