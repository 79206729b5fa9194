package mailmeta

import (
	"html"
	"strings"
	"unicode"
	"unicode/utf8"
)

// fileName returns the decoded file name of a part: the disposition's
// filename (RFC 2183 §2.3), else the obsolete Content-Type name. Many
// mailers put RFC 2047 words in quoted names; they are decoded here.
func (pt *Part) fileName() string {
	v, ok := paramGet(pt.DispositionParams, "filename")
	if !ok || v == "" {
		v, _ = paramGet(pt.Params, "name")
	}
	return strings.TrimSpace(decodeWords(v))
}

// isAttachment decides whether a leaf is shown as an attachment:
// Content-Disposition attachment (RFC 2183 §2.2), an enclosed message,
// or a named or non-text part that is not inline, and not a resource
// embedded by Content-ID in multipart/related (RFC 2387).
func (pt *Part) isAttachment(parent *Part) bool {
	if pt.Type == "multipart" {
		return false
	}
	if pt.Disposition == "attachment" {
		return true
	}
	if pt.Type == "message" && (pt.Subtype == "rfc822" || pt.Subtype == "global") {
		return true
	}
	name := pt.fileName()
	if pt.Type == "text" && name == "" {
		return false
	}
	if parent != nil && parent.Subtype == "related" && pt.ID != "" {
		return false
	}
	if pt.Disposition == "inline" && name == "" {
		return false
	}
	return name != "" || pt.Type != "text"
}

// attachments lists attachments without looking inside enclosed messages
// (they are one attachment each), numbered as IMAP sections.
func attachments(raw []byte, body *Part) []Attachment {
	var out []Attachment
	var walk func(pt, parent *Part, section string)
	walk = func(pt, parent *Part, section string) {
		if pt.Type == "multipart" {
			for i, c := range pt.Children {
				walk(c, pt, childSection(section, i+1))
			}
			return
		}
		if !pt.isAttachment(parent) {
			return
		}
		if section == "" {
			section = "1" // RFC 9051 §6.4.5: a non-multipart message is part 1
		}
		out = append(out, Attachment{
			Name: pt.fileName(),
			Type: pt.Type + "/" + pt.Subtype,
			Size: decodedSize(pt.Encoding, raw[pt.BodyStart:pt.End]),
			Part: section,
		})
	}
	walk(body, nil, "")
	return out
}

// firstText finds the first non-attachment leaf of type text/subtype,
// not looking inside enclosed messages.
func firstText(body *Part, subtype string) *Part {
	var found *Part
	var walk func(pt, parent *Part)
	walk = func(pt, parent *Part) {
		if found != nil {
			return
		}
		if pt.Type == "multipart" {
			for _, c := range pt.Children {
				walk(c, pt)
			}
			return
		}
		if pt.Type == "text" && pt.Subtype == subtype && !pt.isAttachment(parent) {
			found = pt
		}
	}
	walk(body, nil)
	return found
}

// preview returns the first max runes of the first text part (text/plain
// preferred, else text/html), decoded, white space collapsed
// (RFC 8621 §4.1.4 "preview").
func preview(raw []byte, body *Part, max int) string {
	pt := firstText(body, "plain")
	isHTML := false
	if pt == nil {
		pt = firstText(body, "html")
		isHTML = true
	}
	if pt == nil {
		return ""
	}
	// Decode a small prefix first and grow it only when the text it gives
	// is too short: most previews need a few hundred bytes.
	in, most := max*8+512, max*16+4096
	if isHTML {
		in, most = max*32+4096, max*64+64<<10
	}
	size := int(pt.End - pt.BodyStart)
	for {
		s := decodeBody(raw, pt, in)
		if isHTML {
			s = htmlToText(s, max*8)
		}
		var c collapser
		c.all = true
		c.maxRunes = max
		c.write(s)
		if c.full() || in >= most || in >= size {
			return strings.TrimRight(c.b.String(), "\uFFFD")
		}
		in *= 4
	}
}

// decodeBody returns the body of pt decoded from its transfer encoding
// (at most limit bytes before charset conversion) and its charset.
func decodeBody(raw []byte, pt *Part, limit int) string {
	b := decodeTransfer(pt.Encoding, raw[pt.BodyStart:pt.End], limit)
	cs, _ := paramGet(pt.Params, "charset")
	if len(b) >= limit {
		// A cut may split a UTF-8 sequence; drop its start so that the
		// prefix is still read as UTF-8 rather than ISO-8859-1.
		for k := 1; k <= 3 && k <= len(b); k++ {
			if c := b[len(b)-k]; c >= 0xC0 {
				if !utf8.FullRune(b[len(b)-k:]) {
					b = b[:len(b)-k]
				}
				break
			} else if c < 0x80 {
				break
			}
		}
	}
	return charsetToUTF8(cs, b)
}

// collapser writes text with runs of white space reduced to one space,
// or to one line break when the run holds one (unless all is set).
type collapser struct {
	b        strings.Builder
	all      bool // line breaks collapse to spaces too
	maxRunes int  // stop after this many runes; 0: no limit
	maxBytes int  // stop after this many bytes; 0: no limit
	runes    int
	space    bool
	nl       bool
	stop     bool // the next rune did not fit
}

func (c *collapser) full() bool {
	return c.stop || (c.maxRunes > 0 && c.runes >= c.maxRunes) || (c.maxBytes > 0 && c.b.Len() >= c.maxBytes)
}

// asciiSpace marks the ASCII white space bytes.
var asciiSpace = [utf8.RuneSelf]bool{' ': true, '\t': true, '\n': true, '\r': true, '\f': true, '\v': true}

// sep writes the pending white space, if any, as one separator, unless
// the separator and the next rune (next bytes long) would not both fit.
func (c *collapser) sep(next int) {
	if !c.space {
		return
	}
	if c.b.Len() > 0 {
		if (c.maxRunes > 0 && c.runes+2 > c.maxRunes) || (c.maxBytes > 0 && c.b.Len()+1+next > c.maxBytes) {
			c.stop = true
			return
		}
		if c.nl {
			c.b.WriteByte('\n')
		} else {
			c.b.WriteByte(' ')
		}
		c.runes++
	}
	c.space, c.nl = false, false
}

func (c *collapser) write(s string) {
	for i := 0; i < len(s) && !c.full(); {
		ch := s[i]
		if ch < utf8.RuneSelf {
			if asciiSpace[ch] {
				c.space = true
				if ch == '\n' && !c.all {
					c.nl = true
				}
				i++
				continue
			}
			// A run of ASCII non-space bytes is written at once.
			j := i + 1
			for j < len(s) && s[j] < utf8.RuneSelf && !asciiSpace[s[j]] {
				j++
			}
			if c.sep(1); c.stop {
				return
			}
			n := j - i
			if c.maxRunes > 0 {
				n = min(n, c.maxRunes-c.runes)
			}
			if c.maxBytes > 0 {
				n = min(n, c.maxBytes-c.b.Len())
			}
			c.b.WriteString(s[i : i+n])
			c.runes += n
			if n < j-i {
				c.stop = true
				return
			}
			i = j
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			c.space = true
			i += n
			continue
		}
		if c.sep(utf8.RuneLen(r)); c.stop {
			return
		}
		if (c.maxRunes > 0 && c.runes >= c.maxRunes) || (c.maxBytes > 0 && c.b.Len()+utf8.RuneLen(r) > c.maxBytes) {
			c.stop = true // stop without splitting the rune
			return
		}
		c.b.WriteRune(r)
		c.runes++
		i += n
	}
}

// blockTags break lines when HTML is reduced to text.
var blockTags = map[string]bool{
	"p": true, "br": true, "div": true, "li": true, "tr": true, "h1": true, "h2": true,
	"h3": true, "h4": true, "h5": true, "h6": true, "table": true, "ul": true, "ol": true,
	"blockquote": true, "pre": true, "hr": true, "title": true, "section": true,
	"article": true, "header": true, "footer": true, "dd": true, "dt": true, "td": true, "th": true,
}

// htmlToText reduces HTML to text: tags and comments removed, <script>
// and <style> content dropped, entities decoded, white space collapsed,
// block tags turned into line breaks. It stops after maxBytes of output.
func htmlToText(s string, maxBytes int) string {
	var c collapser
	c.maxBytes = maxBytes
	i := 0
	for i < len(s) && !c.full() {
		lt := strings.IndexByte(s[i:], '<')
		if lt < 0 {
			c.write(unescapeText(s[i:]))
			break
		}
		if lt > 0 {
			c.write(unescapeText(s[i : i+lt]))
		}
		i += lt
		rest := s[i:]
		switch {
		case strings.HasPrefix(rest, "<!--"):
			if e := strings.Index(rest[4:], "-->"); e >= 0 {
				i += 4 + e + 3
			} else {
				i = len(s)
			}
		case len(rest) > 1 && (rest[1] == '!' || rest[1] == '?' || rest[1] == '/' || isASCIILetter(rest[1])):
			closing := rest[1] == '/'
			j := 1
			if closing {
				j = 2
			}
			k := j
			for k < len(rest) && (isASCIILetter(rest[k]) || (rest[k] >= '0' && rest[k] <= '9')) {
				k++
			}
			name := strings.ToLower(rest[j:k])
			gt := strings.IndexByte(rest, '>')
			if gt < 0 {
				i = len(s)
				break
			}
			i += gt + 1
			if blockTags[name] {
				c.write("\n")
				c.nl = true
			}
			if !closing && (name == "script" || name == "style") && !strings.HasSuffix(rest[:gt], "/") {
				i = skipRawText(s, i, name)
			}
		default:
			c.write("<")
			i++
		}
	}
	return c.b.String()
}

func isASCIILetter(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }

// skipRawText skips the content of a script or style element up to and
// including its end tag, or to the end of s.
func skipRawText(s string, i int, name string) int {
	for i < len(s) {
		j := strings.Index(s[i:], "</")
		if j < 0 {
			return len(s)
		}
		i += j + 2
		if len(s)-i >= len(name) && strings.EqualFold(s[i:i+len(name)], name) {
			if gt := strings.IndexByte(s[i:], '>'); gt >= 0 {
				return i + gt + 1
			}
			return len(s)
		}
	}
	return len(s)
}

func unescapeText(s string) string {
	if strings.IndexByte(s, '&') < 0 {
		return s
	}
	return html.UnescapeString(s)
}

// DefaultMaxText is the cap ExtractText uses when maxBytes <= 0.
const DefaultMaxText = 1 << 20

// ExtractText returns the searchable text of a message: every text/* part
// (and message/* parts other than enclosed messages, e.g. delivery
// reports) decoded from its transfer encoding (RFC 2045 §6) and charset,
// HTML reduced to text, including the parts of enclosed messages, plus the
// attachment names. Plain and HTML are each capped at maxBytes bytes
// (DefaultMaxText when maxBytes <= 0), cut at a rune boundary.
func ExtractText(raw []byte, lim Limits, maxBytes int) (t Text) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxText
	}
	if !noRecover {
		defer func() {
			if r := recover(); r != nil {
				t = Text{}
			}
		}()
	}
	p := &parser{raw: raw, lim: lim.withDefaults()}
	body, _ := p.parsePart(0, len(raw), 0, "", false, true)
	var plain, htm strings.Builder
	var walk func(pt, parent *Part)
	walk = func(pt, parent *Part) {
		if pt.Type == "multipart" {
			for _, c := range pt.Children {
				walk(c, pt)
			}
			return
		}
		if pt.isAttachment(parent) {
			if n := pt.fileName(); n != "" {
				t.AttachmentNames = append(t.AttachmentNames, n)
			}
		}
		if pt.Message != nil {
			// The enclosed message's header is part of the body (RFC 9051
			// §6.4.4 BODY): a bounce is found by the original Message-ID
			// or Subject it quotes.
			if room := maxBytes - plain.Len(); room > 0 {
				appendText(&plain, p.headerText(pt.Message, room), maxBytes)
			}
			walk(pt.Message, pt)
			return
		}
		switch {
		case pt.Type == "text" && pt.Subtype == "html":
			room := maxBytes - htm.Len()
			if room <= 0 {
				return
			}
			s := htmlToText(decodeBody(raw, pt, room*32+64<<10), room)
			appendText(&htm, s, maxBytes)
		case pt.Type == "text" || pt.Type == "message":
			room := maxBytes - plain.Len()
			if room <= 0 {
				return
			}
			s := decodeBody(raw, pt, room*4+1024)
			s = strings.ReplaceAll(s, "\r\n", "\n")
			appendText(&plain, s, maxBytes)
		}
	}
	walk(body, nil)
	t.Plain, t.HTML = plain.String(), htm.String()
	return t
}

// headerText is the header fields of the message part m, one per line,
// encoded words decoded (RFC 2047), at most about max bytes.
func (p *parser) headerText(m *Part, max int) string {
	h := scanHeader(p.raw, int(m.HeaderStart), int(m.End), &p.lim, false)
	var b strings.Builder
	for _, f := range h.fields {
		if b.Len() >= max {
			break
		}
		b.WriteString(f.name)
		b.WriteString(": ")
		b.WriteString(decodeWords(f.value))
		b.WriteByte('\n')
	}
	return b.String()
}

// appendText adds s to b on a new line, keeping b within max bytes
// without splitting a rune.
func appendText(b *strings.Builder, s string, max int) {
	s = strings.TrimSpace(s)
	if s == "" {
		return
	}
	if b.Len() > 0 {
		if b.Len()+1 > max {
			return
		}
		b.WriteByte('\n')
	}
	if room := max - b.Len(); len(s) > room {
		s = truncateUTF8(s, room)
	}
	b.WriteString(s)
}

// truncateUTF8 cuts s to at most n bytes at a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
