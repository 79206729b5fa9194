package mailmeta

import "strings"

// Address lists (RFC 5322 §3.4) are parsed leniently by hand: net/mail
// rejects much real mail and flattens groups, and the IMAP envelope needs
// group markers, the source route and the raw (undecoded) display name.

type atok struct {
	kind  byte // 'a' atom, 'q' quoted-string, 'c' comment, 'd' domain literal, or the special itself
	text  string
	space bool // white space (or a comment) before the token
}

const maxAddrTokens = 1 << 16

func isAddrSpecial(c byte) bool {
	switch c {
	case '<', '>', '@', ',', ';', ':', '.', '(', ')', '[', ']', '"':
		return true
	}
	return false
}

// tokenizeAddr splits an address list into tokens.
func tokenizeAddr(s string) []atok {
	var toks []atok
	space := false
	for i := 0; i < len(s) && len(toks) < maxAddrTokens; {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			space = true
			i++
			continue
		case c == '"':
			var q string
			q, i = readQuoted(s, i)
			toks = append(toks, atok{kind: 'q', text: q, space: space})
		case c == '(':
			j := skipComment(s, i)
			inner := s[i+1 : j]
			inner = strings.TrimSuffix(inner, ")")
			toks = append(toks, atok{kind: 'c', text: strings.TrimSpace(inner), space: space})
			i = j
			space = true
			continue
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				j = len(s)
			} else {
				j += i + 1
			}
			toks = append(toks, atok{kind: 'd', text: s[i:j], space: space})
			i = j
		case c == ')' || c == ']':
			i++ // stray closer
			continue
		case isAddrSpecial(c):
			toks = append(toks, atok{kind: c, text: s[i : i+1], space: space})
			i++
		default:
			j := i
			for j < len(s) && !isAddrSpecial(s[j]) && s[j] != ' ' && s[j] != '\t' && s[j] != '\r' && s[j] != '\n' {
				j++
			}
			toks = append(toks, atok{kind: 'a', text: s[i:j], space: space})
			i = j
		}
		space = false
	}
	return toks
}

// parseAddressList returns the envelope form and the decoded form of an
// address list. Groups appear in the envelope form only (the decoded
// form lists their members).
func parseAddressList(v string) ([]Address, []Addr) {
	toks := tokenizeAddr(v)
	var env []Address
	var dec []Addr
	add := func(a Address, d Addr, ok bool) {
		if ok {
			env = append(env, a)
			dec = append(dec, d)
		}
	}
	pos := 0
	for pos < len(toks) {
		switch toks[pos].kind {
		case ',', ';', '>', ':':
			pos++
			continue
		}
		// A group is a phrase followed by ":" (RFC 5322 §3.4).
		k := pos
		for k < len(toks) && isPhraseTok(toks[k].kind) {
			k++
		}
		if k < len(toks) && toks[k].kind == ':' {
			name, _ := phrase(toks[pos:k])
			env = append(env, Address{Mailbox: name, GroupStart: true})
			pos = k + 1
			for pos < len(toks) && toks[pos].kind != ';' {
				if toks[pos].kind == ',' || toks[pos].kind == ':' {
					pos++
					continue
				}
				pos = parseMailboxes(toks, pos, true, add)
			}
			pos++ // ";"
			env = append(env, Address{GroupEnd: true})
			continue
		}
		pos = parseMailboxes(toks, pos, false, add)
	}
	return env, dec
}

// parseMailboxes parses the mailboxes of toks[pos:] up to the next ','
// (or ';' in a group) outside angle brackets: normally one, more when
// addr-specs are only separated by white space (a missing comma).
func parseMailboxes(toks []atok, pos int, inGroup bool, add func(Address, Addr, bool)) int {
	end := pos
	depth := 0
	for end < len(toks) {
		k := toks[end].kind
		if depth == 0 && (k == ',' || (inGroup && k == ';')) {
			break
		}
		if k == '<' {
			depth++
		} else if k == '>' && depth > 0 {
			depth--
		}
		end++
	}
	if end == pos {
		return pos + 1 // never stall on a token that starts no mailbox
	}
	seg := toks[pos:end]
	ats := 0 // "@" tokens left in seg
	for _, t := range seg {
		if t.kind == '@' {
			ats++
		}
	}
	for len(seg) > 0 {
		a, d, n, ok := parseMailbox(seg, ats)
		add(a, d, ok)
		for _, t := range seg[:n] {
			if t.kind == '@' {
				ats--
			}
		}
		seg = seg[n:]
	}
	return end
}

func isPhraseTok(k byte) bool { return k == 'a' || k == 'q' || k == 'c' || k == '.' }

// parseMailbox parses one mailbox (RFC 5322 §3.4) at the start of seg, a
// segment between commas holding ats "@" tokens, and returns how many
// tokens it used. The rest of seg is another mailbox only when an
// addr-spec is followed by more "@" (a missing comma); work is linear in
// the tokens used.
func parseMailbox(seg []atok, ats int) (Address, Addr, int, bool) {
	first := len(seg) // first "<", or "@" not in a display name
	for i, t := range seg {
		if t.kind == '<' {
			first = i
			break
		}
		if t.kind == '@' {
			// "a@b <c@d>": an unquoted "@" in a display name.
			if de := domainEnd(seg, i); de < len(seg) && seg[de].kind == '<' {
				first = de
			} else {
				first = i
			}
			break
		}
	}
	used := len(seg)
	var a Address
	var comment string
	if first < len(seg) && seg[first].kind == '<' {
		// name-addr: [display-name] angle-addr; the rest of seg is dropped.
		a.Name, comment = phrase(seg[:first])
		in := seg[first+1:]
		for i, t := range in {
			if t.kind == '>' {
				in = in[:i]
				break
			}
		}
		in = stripRoute(in, &a)
		a.Mailbox, a.Host = addrSpec(in)
		if comment == "" {
			comment = firstComment(seg[first:])
		}
	} else {
		// addr-spec, perhaps after words that a sender forgot to quote.
		at := -1
		if first < len(seg) {
			at = first
		}
		local := 0
		if at > 0 {
			// The local part runs back from "@" while tokens touch.
			local = at
			for local > 0 {
				t := seg[local-1]
				if t.kind != 'a' && t.kind != 'q' && t.kind != '.' {
					break
				}
				local--
				if t.space {
					break
				}
			}
		}
		a.Name, _ = phrase(seg[:local])
		if at >= 0 && ats > 1 {
			// The domain ends at white space; what follows, with its
			// comments, up to the next word is this mailbox's.
			de := domainEnd(seg, at)
			for de < len(seg) && seg[de].kind == 'c' {
				de++
			}
			used = de
		}
		a.Mailbox, a.Host = addrSpec(seg[local:used])
		comment = firstComment(seg[:used])
	}
	if used == 0 {
		used = 1 // never stall
	}
	if a.Name == "" && a.Mailbox == "" && a.Host == "" {
		return Address{}, Addr{}, used, false
	}
	d := Addr{Name: decodeWords(a.Name), Email: a.Mailbox}
	if a.Host != "" {
		d.Email += "@" + a.Host
	}
	if d.Name == "" && comment != "" {
		d.Name = decodeWords(comment)
	}
	return a, d, used, true
}

// domainEnd returns the end of the domain after the "@" at seg[at]: it
// stops at white space (unless a dot follows) or at "<".
func domainEnd(seg []atok, at int) int {
	de := at + 1
	for de < len(seg) && (de == at+1 || !seg[de].space || seg[de].kind == '.') && seg[de].kind != '<' {
		de++
	}
	return de
}

// stripRoute removes an obsolete route "@a,@b:" (RFC 5322 §4.4) into a.Adl.
func stripRoute(in []atok, a *Address) []atok {
	if len(in) == 0 || in[0].kind != '@' {
		return in
	}
	for i, t := range in {
		if t.kind == ':' {
			var b strings.Builder
			for _, r := range in[:i] {
				if r.kind != 'c' {
					b.WriteString(r.text)
				}
			}
			a.Adl = b.String()
			return in[i+1:]
		}
	}
	return in
}

// phrase joins display-name words with single spaces, unquoting quoted
// strings and dropping comments; it also returns the first comment.
func phrase(toks []atok) (string, string) {
	var b strings.Builder
	comment := ""
	for _, t := range toks {
		switch t.kind {
		case 'c':
			if comment == "" {
				comment = t.text
			}
			continue
		}
		// Atoms, quoted strings, dots and stray specials, as written.
		if b.Len() > 0 && t.space {
			b.WriteByte(' ')
		}
		b.WriteString(t.text)
	}
	return strings.TrimSpace(b.String()), comment
}

func firstComment(toks []atok) string {
	for _, t := range toks {
		if t.kind == 'c' && t.text != "" {
			return t.text
		}
	}
	return ""
}

// addrSpec splits local-part "@" domain (RFC 5322 §3.4.1), dropping
// comments and white space.
func addrSpec(toks []atok) (string, string) {
	at := -1
	for i, t := range toks {
		if t.kind == '@' {
			at = i
			break
		}
	}
	var local, domain strings.Builder
	quoted := false
	lt := toks
	if at >= 0 {
		lt = toks[:at]
		for _, t := range toks[at+1:] {
			if t.kind != 'c' {
				domain.WriteString(t.text)
			}
		}
	}
	for _, t := range lt {
		switch t.kind {
		case 'c', '<', '>':
			continue
		case 'q':
			quoted = true
		}
		local.WriteString(t.text)
	}
	l := local.String()
	if quoted || !isDotAtom(l) {
		l = quoteLocal(l)
	}
	return l, domain.String()
}

// isDotAtom reports RFC 5322 §3.2.3 dot-atom-text (8-bit allowed, RFC 6532).
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return s == ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f || (c < 0x80 && strings.IndexByte(`()<>[]:;@\,"`, c) >= 0) {
			return false
		}
	}
	return true
}

// quoteLocal quotes a local part unless it is a dot-atom.
func quoteLocal(s string) string {
	if isDotAtom(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
