package mailmeta

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// field is one header field of a part, value raw and unfolded.
type field struct {
	name  string // as written
	value string // unfolded (RFC 5322 §2.2.3), trimmed, valid UTF-8
}

// Fields this package reads, looked up without scanning every field.
const (
	hContentType = iota + 1
	hContentTransferEncoding
	hContentID
	hContentDescription
	hContentMD5
	hContentDisposition
	hContentLanguage
	hContentLocation
	hDate
	hSubject
	hFrom
	hSender
	hReplyTo
	hTo
	hCc
	hBcc
	hInReplyTo
	hMessageID
	hReferences
	numKnown
)

var knownFields = map[string]int{
	"content-type": hContentType, "content-transfer-encoding": hContentTransferEncoding,
	"content-id": hContentID, "content-description": hContentDescription,
	"content-md5": hContentMD5, "content-disposition": hContentDisposition,
	"content-language": hContentLanguage, "content-location": hContentLocation,
	"date": hDate, "subject": hSubject, "from": hFrom, "sender": hSender,
	"reply-to": hReplyTo, "to": hTo, "cc": hCc, "bcc": hBcc,
	"in-reply-to": hInReplyTo, "message-id": hMessageID, "references": hReferences,
}

// knownField returns the id of a field name (case-insensitive), or 0.
func knownField(name []byte) int {
	var buf [32]byte
	if len(name) > len(buf) {
		return 0
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return knownFields[string(buf[:len(name)])]
}

// headerBlock is the result of scanning one header.
type headerBlock struct {
	fields    []field
	first     [numKnown]int32 // index+1 in fields of the first known field
	bodyStart int
	noSep     bool // ended by a line that is not a field (no empty line)
	fromLine  bool // skipped an mbox "From " line
	capped    bool // MaxHeaders or MaxHeaderBytes reached
}

// get returns the value of the first field with the given id.
func (h *headerBlock) get(id int) (string, bool) {
	if i := h.first[id]; i > 0 {
		return h.fields[i-1].value, true
	}
	return "", false
}

// lineEnd returns the index after the LF ending the line at i, or end.
func lineEnd(raw []byte, i, end int) int {
	if j := bytes.IndexByte(raw[i:end], '\n'); j >= 0 {
		return i + j + 1
	}
	return end
}

// isBlank reports whether raw[i:le] is an empty line (CRLF or LF).
func isBlank(raw []byte, i, le int) bool {
	n := le - i
	return (n == 1 && raw[i] == '\n') || (n == 2 && raw[i] == '\r' && raw[i+1] == '\n')
}

// fieldColon returns the index of the colon ending a field name on the
// line at i, or -1. RFC 5322 §3.6.8: ftext is %d33-57 / %d59-126;
// WSP before the colon is obsolete syntax (RFC 5322 §4.5) and accepted.
func fieldColon(raw []byte, i, le int) int {
	j := i
	for j < le {
		c := raw[j]
		if c == ':' {
			break
		}
		if c < 33 || c > 126 {
			break
		}
		j++
	}
	if j == i {
		return -1
	}
	k := j
	for k < le && (raw[k] == ' ' || raw[k] == '\t') {
		k++
	}
	if k < le && raw[k] == ':' {
		return k
	}
	return -1
}

// scanHeader reads the header block of the part starting at start.
// msg enables skipping an mbox "From " line at the start of a message.
func scanHeader(raw []byte, start, end int, lim *Limits, msg bool) headerBlock {
	h := headerBlock{bodyStart: end}
	i := start
	cur := -1                           // index in h.fields of the field being continued
	var vs, ve int                      // raw value range of that field
	recording := true                   // false once a limit was reached
	limit := start + lim.MaxHeaderBytes // no field byte past this is read
	flush := func() {
		if cur >= 0 {
			if ve > limit {
				ve = limit
				for ve > vs && !utf8.RuneStart(raw[ve]) {
					ve--
				}
				h.capped = true
			}
			h.fields[cur].value = unfold(raw[vs:max(vs, ve)])
			cur = -1
		}
	}
	for i < end {
		le := lineEnd(raw, i, end)
		if isBlank(raw, i, le) {
			flush()
			h.bodyStart = le
			return h
		}
		c := raw[i]
		if c == ' ' || c == '\t' {
			// RFC 5322 §2.2.3 folding: continuation of the previous field.
			if cur >= 0 {
				ve = trimEOL(raw, i, le)
			}
			i = le
			continue
		}
		colon := fieldColon(raw, i, le)
		if colon < 0 {
			if msg && i == start && bytes.HasPrefix(raw[i:le], []byte("From ")) {
				h.fromLine = true
				i = le
				continue
			}
			flush()
			h.noSep = true
			h.bodyStart = i
			return h
		}
		flush()
		if recording && (len(h.fields) >= lim.MaxHeaders || colon >= limit) {
			recording = false
			h.capped = true
		}
		if recording {
			name := raw[i:colon]
			name = bytes.TrimRight(name, " \t")
			h.fields = append(h.fields, field{name: validUTF8(string(name))})
			cur = len(h.fields) - 1
			if id := knownField(name); id > 0 && h.first[id] == 0 {
				h.first[id] = int32(cur + 1)
			}
			vs, ve = colon+1, trimEOL(raw, i, le)
		}
		i = le
	}
	flush()
	return h
}

// trimEOL returns the end of the line at [i, le) without its CRLF or LF.
func trimEOL(raw []byte, i, le int) int {
	if le > i && raw[le-1] == '\n' {
		le--
		if le > i && raw[le-1] == '\r' {
			le--
		}
	}
	return le
}

// unfold removes the line breaks of a folded value (RFC 5322 §2.2.3),
// trims surrounding white space and returns valid UTF-8.
func unfold(v []byte) string {
	if bytes.IndexByte(v, '\n') < 0 {
		return validUTF8(string(bytes.TrimSpace(v)))
	}
	out := make([]byte, 0, len(v))
	for _, c := range v {
		if c == '\n' {
			if n := len(out); n > 0 && out[n-1] == '\r' {
				out = out[:n-1]
			}
			continue
		}
		out = append(out, c)
	}
	return validUTF8(string(bytes.TrimSpace(out)))
}

// validUTF8 returns s when it is valid UTF-8, else s read as ISO-8859-1
// (reversible; RFC 6532 allows only UTF-8 in raw headers).
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return latin1(s)
}

func latin1(s string) string {
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}
