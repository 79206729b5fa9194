package mailmeta

import (
	"net/mail"
	"strings"
	"time"
)

const maxMsgIDs = 100

// msgIDs extracts the msg-ids of an In-Reply-To or References value
// (RFC 5322 §3.6.4) without their angle brackets, in order. Values
// without any "<" fall back to white-space separated words holding "@".
func msgIDs(v string) []string {
	var ids []string
	if strings.IndexByte(v, '<') < 0 {
		for _, w := range strings.Fields(v) {
			if strings.IndexByte(w, '@') > 0 {
				ids = append(ids, w)
			}
		}
		return ids
	}
	for i := 0; i < len(v); {
		switch v[i] {
		case '(':
			i = skipComment(v, i)
			continue
		case '"':
			_, i = readQuoted(v, i)
			continue
		case '<':
			j := strings.IndexByte(v[i+1:], '>')
			if j < 0 {
				j = len(v) - i - 1
			}
			if id := stripSpace(v[i+1 : i+1+j]); id != "" {
				ids = append(ids, id)
			}
			i += j + 2
			continue
		}
		i++
	}
	return ids
}

// normMsgID normalises a Message-ID value: the first msg-id without <>,
// else the first word of the value.
func normMsgID(v string) string {
	if ids := msgIDs(v); len(ids) > 0 {
		return ids[0]
	}
	if f := strings.Fields(v); len(f) > 0 {
		return strings.Trim(f[0], "<>")
	}
	return ""
}

// dedupCap removes repeated ids and keeps at most maxMsgIDs: the first one
// (the thread root) and the last ones (the nearest ancestors), as
// RFC 5322 §3.6.4 suggests when trimming References.
func dedupCap(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	seen := make(map[string]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	if len(out) > maxMsgIDs {
		out = append(out[:1], out[len(out)-(maxMsgIDs-1):]...)
	}
	return out
}

// baseSubject implements RFC 5256 §2.1 on a decoded subject.
func baseSubject(s string) string {
	// (1) tabs and continuations to space, runs of spaces to one.
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\r' || r == '\n'
	}), " ")
	for {
		// (2) remove trailers: "(fwd)" and WSP.
		for {
			if strings.HasSuffix(s, " ") {
				s = s[:len(s)-1]
			} else if len(s) >= 5 && strings.EqualFold(s[len(s)-5:], "(fwd)") {
				s = s[:len(s)-5]
			} else {
				break
			}
		}
		// (3)-(5) remove leaders and blobs until none is left.
		for changed := true; changed; {
			changed = false
			for n := subjLeader(s); n > 0; n = subjLeader(s) {
				s = s[n:]
				changed = true
			}
			// (4) one blob at a time while text remains after it. Done for
			// the whole run of blobs at once (no subj-refwd follows them, or
			// (3) would have matched), which keeps this linear.
			last, end := 0, 0
			for n := subjBlob(s, end); n > 0; n = subjBlob(s, end) {
				last, end = end, n
			}
			if end > 0 {
				if strings.TrimSpace(s[end:]) != "" {
					s = s[end:]
					changed = true
				} else if last > 0 {
					s = s[last:]
					changed = true
				}
			}
		}
		// (6) "[fwd:" ... "]" wrapper.
		if len(s) >= 6 && strings.EqualFold(s[:5], "[fwd:") && s[len(s)-1] == ']' {
			s = s[5 : len(s)-1]
			continue
		}
		return s
	}
}

// subjBlob matches subj-blob = "[" *BLOBCHAR "]" *WSP at i and returns
// the end offset, or 0 (RFC 5256 §5).
func subjBlob(s string, i int) int {
	if i >= len(s) || s[i] != '[' {
		return 0
	}
	j := i + 1
	for j < len(s) && s[j] != '[' && s[j] != ']' {
		j++
	}
	if j >= len(s) || s[j] != ']' {
		return 0
	}
	j++
	for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
		j++
	}
	return j
}

// subjLeader matches subj-leader = (*subj-blob subj-refwd) / WSP and
// returns its length, or 0 (RFC 5256 §5).
func subjLeader(s string) int {
	if strings.HasPrefix(s, " ") {
		return 1
	}
	i := 0
	for n := subjBlob(s, i); n > 0; n = subjBlob(s, i) {
		i = n
	}
	for _, w := range []string{"re", "fwd", "fw"} {
		j := i + len(w)
		if j > len(s) || !strings.EqualFold(s[i:j], w) {
			continue
		}
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		if n := subjBlob(s, j); n > 0 {
			j = n
		}
		if j < len(s) && s[j] == ':' {
			return j + 1
		}
	}
	return 0
}

var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04 -0700",
	"2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 06 15:04:05 -0700",
	"2 Jan 06 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 06 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04:05",
	"Mon, 2 January 2006 15:04:05 -0700",
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon Jan 2 15:04:05 -0700 2006",
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02 15:04:05 -0700",
}

// parseDate parses a Date value (RFC 5322 §3.3, with obsolete forms);
// it returns the zero time when nothing fits.
func parseDate(v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t
	}
	// Drop comments, commas after the day, and collapse white space.
	var b strings.Builder
	for i := 0; i < len(v); {
		if v[i] == '(' {
			i = skipComment(v, i)
			b.WriteByte(' ')
			continue
		}
		b.WriteByte(v[i])
		i++
	}
	s := strings.Join(strings.Fields(b.String()), " ")
	s = strings.TrimSuffix(s, ",")
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t
		}
	}
	// Trailing junk after a parsable prefix, e.g. "... +0000 GMT+00:00".
	if f := strings.Fields(s); len(f) > 4 {
		for n := min(len(f)-1, 8); n >= 4; n-- {
			p := strings.Join(f[:n], " ")
			if t, err := mail.ParseDate(p); err == nil {
				return t
			}
			for _, l := range dateLayouts {
				if t, err := time.Parse(l, p); err == nil {
					return t
				}
			}
		}
	}
	return time.Time{}
}
