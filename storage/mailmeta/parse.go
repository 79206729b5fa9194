package mailmeta

import (
	"bytes"
	"strconv"
	"strings"
)

const maxDefects = 100

// noRecover lets tests and fuzzers see panics instead of the fallback.
var noRecover bool

type parser struct {
	raw     []byte
	lim     Limits
	parts   int
	defects []string
}

func (p *parser) defect(section, what string) {
	if len(p.defects) >= maxDefects {
		return
	}
	if section == "" {
		section = "message"
	}
	p.defects = append(p.defects, section+": "+what)
}

// Parse reads raw once and returns its metadata. It never returns nil and
// never panics; malformed input yields best-effort metadata and Defects.
func Parse(raw []byte, lim Limits) (m *Meta) {
	m = &Meta{Size: int64(len(raw))}
	if !noRecover {
		defer func() {
			// Last line of defence: a bug must not take delivery down.
			if r := recover(); r != nil {
				m = &Meta{
					Size:    int64(len(raw)),
					Body:    leafPart(0, 0, len(raw)),
					Defects: []string{"message: internal error while parsing"},
				}
			}
		}()
	}
	p := &parser{raw: raw, lim: lim.withDefaults()}
	var top headerBlock
	m.Body, top = p.parsePart(0, len(raw), 0, "", false, true)
	h := &top
	m.Envelope = envelope(h)
	if len(h.fields) > 0 {
		m.Headers = make([]HeaderField, len(h.fields))
		for i, f := range h.fields {
			m.Headers[i] = HeaderField{Name: f.name, Value: f.value}
		}
	}
	if v, ok := h.get(hMessageID); ok {
		m.MessageID = normMsgID(v)
	}
	if v, ok := h.get(hInReplyTo); ok {
		m.InReplyTo = dedupCap(msgIDs(v))
	}
	if v, ok := h.get(hReferences); ok {
		m.References = dedupCap(msgIDs(v))
	}
	if v, ok := h.get(hSubject); ok {
		m.Subject = decodeWords(v)
		m.BaseSubject = baseSubject(m.Subject)
	}
	if v, ok := h.get(hDate); ok {
		m.Date = parseDate(v)
	}
	m.From = decodedList(h, hFrom)
	m.To = decodedList(h, hTo)
	m.Cc = decodedList(h, hCc)
	m.Bcc = decodedList(h, hBcc)
	m.ReplyTo = decodedList(h, hReplyTo)
	m.Attachments = attachments(raw, m.Body)
	m.HasAttachment = len(m.Attachments) > 0
	m.Preview = preview(raw, m.Body, p.lim.MaxPreview)
	m.Defects = p.defects
	return m
}

func leafPart(hs, bs, end int) *Part {
	return &Part{
		Type: "text", Subtype: "plain",
		Params:      []Param{{Key: "charset", Value: "us-ascii"}},
		Encoding:    "7bit",
		HeaderStart: int64(hs), BodyStart: int64(bs), End: int64(end),
		Size: int64(end - bs),
	}
}

func decodedList(h *headerBlock, id int) []Addr {
	v, ok := h.get(id)
	if !ok {
		return nil
	}
	_, d := parseAddressList(v)
	return d
}

// envelope builds the IMAP ENVELOPE of a header (RFC 9051 §7.5.2).
func envelope(h *headerBlock) Envelope {
	var e Envelope
	e.Date, _ = h.get(hDate)
	e.Subject, _ = h.get(hSubject)
	e.InReplyTo, _ = h.get(hInReplyTo)
	e.MessageID, _ = h.get(hMessageID)
	list := func(id int) []Address {
		v, ok := h.get(id)
		if !ok {
			return nil
		}
		a, _ := parseAddressList(v)
		return a
	}
	e.From = list(hFrom)
	e.Sender = list(hSender)
	e.ReplyTo = list(hReplyTo)
	e.To = list(hTo)
	e.Cc = list(hCc)
	e.Bcc = list(hBcc)
	// RFC 9051 §7.5.2: absent or empty Sender and Reply-To take From.
	if len(e.Sender) == 0 {
		e.Sender = e.From
	}
	if len(e.ReplyTo) == 0 {
		e.ReplyTo = e.From
	}
	return e
}

// childSection returns the IMAP section of the n-th child (RFC 9051 §6.4.5).
func childSection(section string, n int) string {
	if section == "" {
		return strconv.Itoa(n)
	}
	return section + "." + strconv.Itoa(n)
}

// parsePart parses the entity in raw[start:end]. digest selects the
// multipart/digest default type (RFC 2046 §5.1.5); msg marks the start of
// a message (top level or enclosed), where an mbox "From " line is skipped.
func (p *parser) parsePart(start, end, depth int, section string, digest, msg bool) (*Part, headerBlock) {
	p.parts++
	h := scanHeader(p.raw, start, end, &p.lim, msg)
	if h.fromLine {
		p.defect(section, "mbox From_ line")
	}
	if h.noSep && h.bodyStart > start {
		p.defect(section, "no header/body separator")
	}
	if h.capped {
		p.defect(section, "header limit")
	}
	part := &Part{
		HeaderStart: int64(start),
		BodyStart:   int64(h.bodyStart),
		End:         int64(end),
		Size:        int64(end - h.bodyStart),
		Encoding:    "7bit",
	}
	if v, ok := h.get(hContentType); ok {
		t, s, ps, ok := parseMediaType(v)
		if ok {
			part.Type, part.Subtype, part.Params = t, s, ps
		} else {
			// RFC 2045 §5.2: invalid Content-Type means text/plain.
			p.defect(section, "invalid content-type")
			part.Type, part.Subtype = "text", "plain"
			part.Params = []Param{{Key: "charset", Value: "us-ascii"}}
		}
	} else if digest {
		part.Type, part.Subtype = "message", "rfc822"
	} else {
		part.Type, part.Subtype = "text", "plain"
		part.Params = []Param{{Key: "charset", Value: "us-ascii"}}
	}
	if v, ok := h.get(hContentTransferEncoding); ok {
		if e := firstToken(v); e != "" {
			part.Encoding = e
		}
	}
	part.ID, _ = h.get(hContentID)
	part.Description, _ = h.get(hContentDescription)
	part.MD5, _ = h.get(hContentMD5)
	if v, ok := h.get(hContentDisposition); ok {
		part.Disposition, part.DispositionParams = parseDisposition(v)
	}
	if v, ok := h.get(hContentLanguage); ok {
		part.Language = parseLanguage(v)
	}
	if v, ok := h.get(hContentLocation); ok {
		part.Location = stripSpace(v)
	}

	switch {
	case part.Type == "multipart":
		p.parseMultipart(part, depth, section)
	case part.Type == "message" && (part.Subtype == "rfc822" || part.Subtype == "global"):
		if depth+1 > p.lim.MaxDepth {
			p.degrade(part, section, "depth limit")
		} else if p.parts >= p.lim.MaxParts {
			p.degrade(part, section, "part limit")
		} else {
			if part.Encoding != "7bit" && part.Encoding != "8bit" && part.Encoding != "binary" {
				// RFC 2046 §5.2.1 forbids other encodings; parse the bytes as they are.
				p.defect(section, "encoded "+part.Type+"/"+part.Subtype)
			}
			// The enclosed message's parts are numbered below this section.
			inner, ih := p.parsePart(h.bodyStart, end, depth+1, section, false, true)
			env := envelope(&ih)
			part.Message, part.Envelope = inner, &env
		}
	}
	if part.Type == "text" || part.Type == "message" && part.Message != nil {
		part.Lines = countLines(p.raw[h.bodyStart:end])
	}
	return part, h
}

// degrade turns a container that cannot be descended into a text/plain
// leaf (RFC 2045 §5.2 default), keeping the package invariants.
func (p *parser) degrade(part *Part, section, why string) {
	p.defect(section, why+": "+part.Type+"/"+part.Subtype+" read as text/plain")
	part.Type, part.Subtype = "text", "plain"
	part.Params = []Param{{Key: "charset", Value: "us-ascii"}}
	part.Children, part.Message, part.Envelope = nil, nil, nil
}

// countLines counts the lines of a body: its LFs, plus one for a last
// line without line break (IMAP body-fld-lines, RFC 9051 §7.5.2).
func countLines(b []byte) int64 {
	n := int64(bytes.Count(b, []byte{'\n'}))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}

// parseMultipart splits a multipart body at its delimiter lines
// (RFC 2046 §5.1.1) and parses each body part.
func (p *parser) parseMultipart(part *Part, depth int, section string) {
	boundary, _ := paramGet(part.Params, "boundary")
	if boundary == "" {
		p.degrade(part, section, "multipart without boundary")
		return
	}
	if depth+1 > p.lim.MaxDepth {
		p.degrade(part, section, "depth limit")
		return
	}
	raw := p.raw
	bs, end := int(part.BodyStart), int(part.End)
	if strings.ContainsAny(boundary, "\r\n") {
		p.degrade(part, section, "line break in boundary")
		return
	}
	delim := []byte("\n--" + boundary)
	digest := part.Subtype == "digest"
	childStart := -1
	closed, capped := false, false
	empty := -1 // where a skipped empty part was
	add := func(cs, ce int) {
		if p.parts >= p.lim.MaxParts {
			capped = true
			return
		}
		c, _ := p.parsePart(cs, ce, depth+1, childSection(section, len(part.Children)+1), digest, false)
		part.Children = append(part.Children, c)
	}
	for pos := bs; pos < end && !capped; {
		ls, le, isClose, ok := findDelimiter(raw, bs, pos, end, delim)
		if !ok {
			break
		}
		if childStart == ls {
			// Two delimiter lines in a row: not even the CRLF that must
			// precede a delimiter lies between them, so no body part.
			p.defect(section, "adjacent boundary delimiters")
			empty = ls
		} else if childStart >= 0 {
			// The line break before the delimiter belongs to it.
			ce := ls
			if ce > childStart && raw[ce-1] == '\n' {
				ce--
				if ce > childStart && raw[ce-1] == '\r' {
					ce--
				}
			}
			add(childStart, ce)
		}
		if isClose {
			closed = true
			break
		}
		childStart = le
		pos = le
	}
	if childStart >= 0 && !closed && !capped {
		p.defect(section, "missing closing boundary")
		add(childStart, end)
	}
	if capped {
		p.defect(section, "part limit")
	}
	if len(part.Children) == 0 && empty >= 0 && !capped {
		// Only adjacent delimiters: keep one empty part rather than none.
		add(empty, empty)
	}
	if len(part.Children) == 0 {
		why := "no boundary delimiter"
		if capped {
			why = "part limit"
		}
		p.degrade(part, section, why)
	}
}

// findDelimiter finds the next delimiter line "--boundary" [ "--" ]
// *LWSP line-end (RFC 2046 §5.1.1) starting at or after pos. It returns
// the line's start, the offset after its line break, and whether it is
// the close delimiter.
//
// delim is "\n--boundary" and the boundary holds no line break, so every
// candidate is at a distinct line start and is rejected within its line:
// the search is linear however long the boundary.
func findDelimiter(raw []byte, bs, pos, end int, delim []byte) (ls, le int, isClose, ok bool) {
	for pos < end {
		if pos == bs && bytes.HasPrefix(raw[bs:end], delim[1:]) {
			ls = bs
		} else {
			from := max(pos-1, bs)
			i := bytes.Index(raw[from:end], delim)
			if i < 0 {
				return 0, 0, false, false
			}
			ls = from + i + 1
		}
		pos = ls + 1
		j := ls + len(delim) - 1
		isClose = j+1 < end && raw[j] == '-' && raw[j+1] == '-'
		if isClose {
			j += 2
		}
		for j < end && (raw[j] == ' ' || raw[j] == '\t') {
			j++
		}
		switch {
		case j == end:
			return ls, end, isClose, true
		case raw[j] == '\n':
			return ls, j + 1, isClose, true
		case raw[j] == '\r' && j+1 < end && raw[j+1] == '\n':
			return ls, j + 2, isClose, true
		case raw[j] == '\r' && j+1 == end:
			return ls, end, isClose, true
		}
	}
	return 0, 0, false, false
}
