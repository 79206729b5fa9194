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
				a, d, next, ok := parseMailbox(toks, pos, true)
				add(a, d, ok)
				pos = next
			}
			pos++ // ";"
			env = append(env, Address{GroupEnd: true})
			continue
		}
		a, d, next, ok := parseMailbox(toks, pos, false)
		add(a, d, ok)
		pos = next
	}
	return env, dec
}

func isPhraseTok(k byte) bool { return k == 'a' || k == 'q' || k == 'c' || k == '.' }

// parseMailbox parses one mailbox (RFC 5322 §3.4) from toks[pos:] up to
// the next ',' (or ';' in a group) outside angle brackets.
func parseMailbox(toks []atok, pos int, inGroup bool) (Address, Addr, int, bool) {
	end := pos
	angle := -1
	depth := 0
	for end < len(toks) {
		k := toks[end].kind
		if depth == 0 && (k == ',' || (inGroup && k == ';')) {
			break
		}
		if k == '<' {
			if angle < 0 {
				angle = end
			}
			depth++
		} else if k == '>' && depth > 0 {
			depth--
		}
		end++
	}
	if end == pos {
		// Never stall on a token that starts no mailbox.
		return Address{}, Addr{}, pos + 1, false
	}
	seg := toks[pos:end]
	var a Address
	var comment string
	if angle >= 0 {
		// name-addr: [display-name] angle-addr
		a.Name, comment = phrase(toks[pos:angle])
		in := toks[angle+1 : end]
		for i, t := range in {
			if t.kind == '>' {
				in = in[:i]
				break
			}
		}
		in = stripRoute(in, &a)
		a.Mailbox, a.Host = addrSpec(in)
		if comment == "" {
			comment = firstComment(seg[angle-pos:])
		}
	} else {
		// addr-spec, perhaps after words that a sender forgot to quote.
		at := -1
		for i, t := range seg {
			if t.kind == '@' {
				at = i
				break
			}
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
		spec := seg[local:]
		if at >= 0 {
			// The domain ends at white space; words after it holding "@"
			// are another address with its comma missing.
			de := at + 1
			for de < len(seg) && (de == at+1 || !seg[de].space || seg[de].kind == '.') && seg[de].kind != '<' {
				de++
			}
			for _, t := range seg[de:] {
				if t.kind == '@' {
					spec, end = seg[local:de], pos+de
					break
				}
			}
		}
		a.Mailbox, a.Host = addrSpec(spec)
		comment = firstComment(seg)
	}
	if a.Name == "" && a.Mailbox == "" && a.Host == "" {
		return Address{}, Addr{}, end, false
	}
	d := Addr{Name: decodeWords(a.Name), Email: a.Mailbox}
	if a.Host != "" {
		d.Email += "@" + a.Host
	}
	if d.Name == "" && comment != "" {
		d.Name = decodeWords(comment)
	}
	return a, d, end, true
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
