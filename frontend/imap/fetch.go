package imap

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime/quotedprintable"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/stoa-mail/stoa/frontend/imap/proto"
	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/mailmeta"
)

const fetchPage = 1000

// cmdFetch: FETCH (RFC 9051 §6.4.5) with CHANGEDSINCE (RFC 7162 §3.1.4)
// and VANISHED (RFC 7162 §3.2.6). Responses stream page by page.
func cmdFetch(s *session, c *proto.Command) error {
	if len(c.Args) < 2 || len(c.Args) > 3 || c.Args[0].Kind != proto.Atom {
		return bad("FETCH expects a set and attributes")
	}
	set, err := proto.ParseNumSet(c.Args[0].S)
	if err != nil {
		return bad("Bad sequence set")
	}
	items, err := proto.ParseFetchItems(c.Args[1])
	if err != nil {
		var se *proto.SyntaxError
		if errors.As(err, &se) {
			return bad(se.Msg)
		}
		return err
	}
	var since uint64
	hasSince, vanished := false, false
	if len(c.Args) == 3 {
		m := c.Args[2]
		if m.Kind != proto.List {
			return bad("Bad FETCH modifiers")
		}
		for i := 0; i < len(m.L); i++ {
			switch strings.ToUpper(m.L[i].S) {
			case "CHANGEDSINCE":
				if i+1 >= len(m.L) {
					return bad("CHANGEDSINCE expects a value")
				}
				v, ok := proto.Number64(m.L[i+1])
				if !ok {
					return bad("Bad CHANGEDSINCE value")
				}
				since, hasSince = v, true
				i++
			case "VANISHED":
				vanished = true
			default:
				return bad("Unknown FETCH modifier")
			}
		}
		if vanished && (!c.UID || !s.qresync || !hasSince) {
			return bad("VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE")
		}
	}
	hasUID, hasModSeq, hasFlags, setSeen := false, false, false, false
	for _, it := range items {
		switch it.Name {
		case "UID":
			hasUID = true
		case "MODSEQ":
			hasModSeq = true
		case "FLAGS":
			hasFlags = true
		case "RFC822", "RFC822.TEXT":
			setSeen = true
		case "BODY[]", "BINARY[]":
			setSeen = setSeen || !it.Peek
		}
	}
	if hasModSeq || hasSince {
		s.condstore = true
	}
	if c.UID && !hasUID {
		items = append([]proto.FetchItem{{Name: "UID"}}, items...)
	}
	if hasSince && !hasModSeq {
		items = append(items, proto.FetchItem{Name: "MODSEQ"})
	}
	iv, err := s.resolve(set, c.UID)
	if err != nil {
		return err
	}
	if vanished {
		_, gone, err := s.srv.store.ChangedSince(s.ctx, s.acct.ID, s.sel.id, since)
		if err != nil && !errors.Is(err, storage.ErrChangesTruncated) {
			return err
		}
		var vs []uint32
		for _, u := range gone {
			if set.Contains(u, lastUID(s.sel)) && s.sel.index(u) < 0 {
				vs = append(vs, u)
			}
		}
		if vs = dedupe(vs); len(vs) > 0 {
			s.w.WriteString("* VANISHED (EARLIER) ")
			s.w.numSet(vs)
			s.w.WriteString("\r\n")
		}
	}
	var seenModSeq uint64
	if setSeen && !s.sel.readOnly {
		uids := s.sel.uidsOf(iv)
		if len(uids) > 0 {
			res, err := s.srv.store.StoreFlags(s.ctx, s.acct.ID, s.sel.id, uids, storage.FlagsAdd, []string{storage.FlagSeen}, storage.StoreOptions{})
			if err != nil {
				return err
			}
			if seenModSeq = res.ModSeq; seenModSeq > 0 && !hasFlags {
				items = append(items, proto.FetchItem{Name: "FLAGS"})
			}
		}
	}
	var keep func(*storage.Email) bool
	if hasSince {
		keep = func(e *storage.Email) bool { return e.ModSeq > since }
	}
	if err := s.fetchStream(iv, items, keep, true); err != nil {
		return err // the \Seen change is reported by the next update
	}
	if seenModSeq > 0 {
		s.sel.ownFlags[seenModSeq] = struct{}{} // reported above
	}
	return nil
}

func lastUID(sel *selected) uint32 {
	if len(sel.uids) == 0 {
		return 0
	}
	return sel.uids[len(sel.uids)-1]
}

// fetchStream pages through the store and writes one FETCH response per
// message, never holding more than a page of metadata.
func (s *session) fetchStream(iv []ival, items []proto.FetchItem, keep func(*storage.Email) bool, _ bool) error {
	sel := s.sel
	needMeta, needBlob, envOnly := false, false, false
	for _, it := range items {
		switch it.Name {
		case "ENVELOPE":
			envOnly = !needMeta
		case "BODYSTRUCTURE", "BODY":
			needMeta = true
		case "BODY[]", "BINARY[]", "BINARY.SIZE":
			needMeta, needBlob = true, true
		case "RFC822", "RFC822.HEADER", "RFC822.TEXT":
			needMeta, needBlob = true, true
		}
	}
	if needMeta {
		envOnly = false
	}
	// Metadata (and blobs) are read several at a time, responses written
	// in order: on Cassandra each read is a round trip (1,000 envelopes:
	// 1.7 s one by one). Blobs go in smaller windows to bound memory.
	window := fetchWindow
	if needBlob {
		window = fetchBlobWindow
	}
	type item struct {
		seq  int
		e    *storage.Email
		meta *mailmeta.Meta
		raw  []byte
	}
	batch := make([]item, 0, window)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		// imap.command_timeout: the engines' reads may not look at ctx
		// (Pebble), so a long FETCH checks it between windows.
		if err := s.ctx.Err(); err != nil {
			return err
		}
		if needMeta || envOnly || needBlob {
			var g errgroup.Group
			g.SetLimit(fetchParallel)
			for i := range batch {
				it := &batch[i]
				g.Go(func() (err error) {
					if needMeta {
						it.meta, err = s.srv.store.Meta(s.ctx, it.e.BlobID)
					} else if envOnly {
						it.meta, err = s.envelope(it.e.BlobID)
					}
					if err == nil && needBlob {
						it.raw, err = s.srv.store.Blob(s.ctx, it.e.BlobID)
					}
					return err
				})
			}
			if err := g.Wait(); err != nil {
				return err
			}
		}
		for _, it := range batch {
			if err := s.writeFetch(it.seq, it.e, items, it.meta, it.raw); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	for _, x := range iv {
		from, to := sel.uids[x.i], sel.uids[x.j]
		k := x.i
		for {
			page, err := s.srv.store.Emails(s.ctx, s.acct.ID, sel.id, from, to, fetchPage)
			if err != nil {
				return err
			}
			for i := range page {
				e := &page[i]
				for k <= x.j && sel.uids[k] < e.UID {
					k++
				}
				if k > x.j || sel.uids[k] != e.UID || (keep != nil && !keep(e)) {
					continue
				}
				batch = append(batch, item{seq: k + 1, e: e})
				if len(batch) == window {
					if err := flush(); err != nil {
						return err
					}
				}
			}
			if err := flush(); err != nil { // the page's emails are reused
				return err
			}
			if len(page) < fetchPage || page[len(page)-1].UID >= to {
				break
			}
			from = page[len(page)-1].UID + 1
		}
	}
	return nil
}

// Concurrent reads per FETCH: messages per window (metadata only, and with
// blobs), and reads in flight.
const (
	fetchWindow     = 64
	fetchBlobWindow = 8
	fetchParallel   = 16
)

// envelope decodes only the ENVELOPE of the stored metadata: the common
// "UID FETCH 1:* (ENVELOPE FLAGS)" of a mail client's list view.
func (s *session) envelope(blobID string) (*mailmeta.Meta, error) {
	b, err := s.srv.store.Engine().GetBlobMeta(s.ctx, blobID)
	if err != nil {
		return nil, err
	}
	var m struct {
		Envelope mailmeta.Envelope `json:"env"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &mailmeta.Meta{Envelope: m.Envelope}, nil
}

var errUnknownCTE = errors.New("unknown content-transfer-encoding")

// writeFetch writes one FETCH response. Byte data is computed first so
// that a failure never leaves half a response.
func (s *session) writeFetch(seq int, e *storage.Email, items []proto.FetchItem, meta *mailmeta.Meta, raw []byte) error {
	datas := make([][]byte, len(items))
	found := make([]bool, len(items))
	for i, it := range items {
		var err error
		switch it.Name {
		case "BODY[]":
			datas[i], found[i] = sectionData(raw, meta, it.Section)
		case "RFC822":
			datas[i], found[i] = raw, true
		case "RFC822.HEADER":
			datas[i], found[i] = sectionData(raw, meta, proto.Section{Specifier: "HEADER"})
		case "RFC822.TEXT":
			datas[i], found[i] = sectionData(raw, meta, proto.Section{Specifier: "TEXT"})
		case "BINARY[]", "BINARY.SIZE":
			datas[i], found[i], err = binaryData(raw, meta, it.Section)
		}
		if err != nil {
			return no("UNKNOWN-CTE", "Cannot decode this part")
		}
		if !found[i] && strings.HasPrefix(it.Name, "BINARY") {
			return no("NONEXISTENT", "No such part")
		}
		if it.Partial && found[i] {
			d := datas[i]
			if int64(it.Offset) >= int64(len(d)) {
				d = nil
			} else {
				d = d[it.Offset:]
				if int64(len(d)) > int64(it.Count) {
					d = d[:it.Count]
				}
			}
			datas[i] = d
		}
	}
	w := &s.w
	w.WriteString("* ")
	w.num(uint64(seq))
	w.WriteString(" FETCH (")
	for i, it := range items {
		if i > 0 {
			w.sp()
		}
		switch it.Name {
		case "UID":
			w.WriteString("UID ")
			w.num(uint64(e.UID))
		case "FLAGS":
			w.WriteString("FLAGS ")
			writeFlags(w, e.Flags)
		case "INTERNALDATE":
			w.WriteString("INTERNALDATE ")
			w.str(proto.FormatDateTime(e.InternalDate))
		case "RFC822.SIZE":
			w.WriteString("RFC822.SIZE ")
			w.num(uint64(e.Size))
		case "MODSEQ":
			w.WriteString("MODSEQ (")
			w.num(e.ModSeq)
			w.WriteByte(')')
		case "EMAILID": // RFC 8474
			w.WriteString("EMAILID (M" + strconv.FormatUint(e.EmailID, 10) + ")")
		case "THREADID":
			w.WriteString("THREADID (T" + strconv.FormatUint(e.ThreadID, 10) + ")")
		case "SAVEDATE":
			w.WriteString("SAVEDATE NIL")
		case "ENVELOPE":
			w.WriteString("ENVELOPE ")
			writeEnvelope(w, &meta.Envelope)
		case "BODYSTRUCTURE":
			w.WriteString("BODYSTRUCTURE ")
			writeBodyStructure(w, meta.Body, true)
		case "BODY":
			w.WriteString("BODY ")
			writeBodyStructure(w, meta.Body, false)
		case "RFC822", "RFC822.HEADER", "RFC822.TEXT":
			w.WriteString(it.Name + " ")
			w.literal(datas[i], false)
		case "BODY[]", "BINARY[]":
			w.WriteString(strings.TrimSuffix(it.Name, "[]"))
			w.WriteString("[" + it.Section.String() + "]")
			if it.Partial {
				w.WriteString("<" + strconv.FormatUint(uint64(it.Offset), 10) + ">")
			}
			w.sp()
			if !found[i] {
				w.WriteString("NIL")
			} else {
				w.literal(datas[i], it.Name == "BINARY[]" && bytes.IndexByte(datas[i], 0) >= 0)
			}
		case "BINARY.SIZE":
			w.WriteString("BINARY.SIZE[" + it.Section.String() + "] ")
			w.num(uint64(len(datas[i])))
		}
	}
	w.WriteString(")\r\n")
	return nil
}

func slice(raw []byte, a, b int64) []byte {
	if a < 0 || b > int64(len(raw)) || a > b {
		if a >= 0 && a <= int64(len(raw)) {
			return raw[a:]
		}
		return nil
	}
	return raw[a:b]
}

// sectionData slices the blob by the offsets computed at delivery
// (RFC 9051 §6.4.5 BODY[section]).
func sectionData(raw []byte, m *mailmeta.Meta, sec proto.Section) ([]byte, bool) {
	if m == nil || m.Body == nil {
		if len(sec.Part) == 0 && sec.Specifier == "" {
			return raw, true
		}
		return nil, false
	}
	var hdr, text []byte
	if len(sec.Part) == 0 {
		b := m.Body
		hdr, text = slice(raw, b.HeaderStart, b.BodyStart), raw[min(int(b.BodyStart), len(raw)):]
		if sec.Specifier == "" {
			return raw, true
		}
	} else {
		pt, ok := m.Section(sec.Part)
		if !ok {
			return nil, false
		}
		switch sec.Specifier {
		case "":
			return slice(raw, pt.BodyStart, pt.End), true
		case "MIME":
			return slice(raw, pt.HeaderStart, pt.BodyStart), true
		}
		if pt.Message == nil {
			return nil, false
		}
		hdr, text = slice(raw, pt.Message.HeaderStart, pt.Message.BodyStart), slice(raw, pt.Message.BodyStart, pt.Message.End)
	}
	switch sec.Specifier {
	case "HEADER":
		return hdr, true
	case "TEXT":
		return text, true
	case "HEADER.FIELDS":
		return filterHeader(hdr, sec.Fields, false), true
	case "HEADER.FIELDS.NOT":
		return filterHeader(hdr, sec.Fields, true), true
	}
	return nil, false
}

// filterHeader keeps (or drops) the named fields; the blank line that ends
// the header is kept (RFC 9051 §6.4.5).
func filterHeader(h []byte, fields []string, not bool) []byte {
	var out []byte
	keep := false
	for len(h) > 0 {
		line := h
		if i := bytes.IndexByte(h, '\n'); i >= 0 {
			line = h[:i+1]
		}
		h = h[len(line):]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
		if line[0] != ' ' && line[0] != '\t' {
			name := line
			if i := bytes.IndexByte(line, ':'); i >= 0 {
				name = line[:i]
			}
			name = bytes.TrimSpace(name)
			in := false
			for _, f := range fields {
				if strings.EqualFold(f, string(name)) {
					in = true
					break
				}
			}
			keep = in != not
		}
		if keep {
			out = append(out, line...)
		}
	}
	return append(out, '\r', '\n')
}

// binaryData decodes a part's content-transfer-encoding (RFC 3516 §4.2).
func binaryData(raw []byte, m *mailmeta.Meta, sec proto.Section) ([]byte, bool, error) {
	if len(sec.Part) == 0 || m == nil {
		return raw, true, nil
	}
	pt, ok := m.Section(sec.Part)
	if !ok {
		return nil, false, nil
	}
	data := slice(raw, pt.BodyStart, pt.End)
	if pt.Type == "multipart" || pt.Type == "message" {
		return data, true, nil
	}
	d, err := decodeCTE(data, pt.Encoding)
	return d, true, err
}

func decodeCTE(data []byte, enc string) ([]byte, error) {
	switch strings.ToLower(enc) {
	case "", "7bit", "8bit", "binary":
		return data, nil
	case "base64":
		clean := make([]byte, 0, len(data))
		for _, c := range data {
			if c > ' ' && c != '=' {
				clean = append(clean, c)
			}
		}
		if len(clean)%4 == 1 {
			clean = clean[:len(clean)-1]
		}
		out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
		n, _ := base64.RawStdEncoding.Decode(out, clean) // best effort, as mail readers do
		return out[:n], nil
	case "quoted-printable":
		out, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(data)))
		return out, nil
	}
	return nil, errUnknownCTE
}

// writeEnvelope writes ENVELOPE (RFC 9051 §7.5.2) from stored metadata.
func writeEnvelope(w *writer, e *mailmeta.Envelope) {
	w.WriteByte('(')
	w.nstr(e.Date)
	w.sp()
	w.nstr(e.Subject)
	for _, l := range [][]mailmeta.Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
		w.sp()
		writeAddrs(w, l)
	}
	w.sp()
	w.nstr(e.InReplyTo)
	w.sp()
	w.nstr(e.MessageID)
	w.WriteByte(')')
}

func writeAddrs(w *writer, as []mailmeta.Address) {
	if len(as) == 0 {
		w.WriteString("NIL")
		return
	}
	w.WriteByte('(')
	for _, a := range as {
		switch {
		case a.GroupStart:
			w.WriteString("(NIL NIL ")
			w.str(a.Mailbox)
			w.WriteString(" NIL)")
		case a.GroupEnd:
			w.WriteString("(NIL NIL NIL NIL)")
		default:
			w.WriteByte('(')
			w.nstr(a.Name)
			w.sp()
			w.nstr(a.Adl)
			w.sp()
			w.str(a.Mailbox)
			w.sp()
			w.str(a.Host) // "" not NIL: NIL means a group (RFC 9051 §7.5.2)
			w.WriteByte(')')
		}
	}
	w.WriteByte(')')
}

func writeParams(w *writer, ps []mailmeta.Param) {
	if len(ps) == 0 {
		w.WriteString("NIL")
		return
	}
	w.WriteByte('(')
	for i, p := range ps {
		if i > 0 {
			w.sp()
		}
		w.str(strings.ToUpper(p.Key))
		w.sp()
		w.str(p.Value)
	}
	w.WriteByte(')')
}

// writeBodyStructure writes BODYSTRUCTURE (ext) or BODY (RFC 9051 §7.5.2).
func writeBodyStructure(w *writer, p *mailmeta.Part, ext bool) {
	if p == nil {
		w.WriteString(`("TEXT" "PLAIN" NIL NIL NIL "7BIT" 0 0)`)
		return
	}
	if p.Type == "multipart" {
		w.WriteByte('(')
		if len(p.Children) == 0 {
			w.WriteString(`("TEXT" "PLAIN" NIL NIL NIL "7BIT" 0 0)`)
		}
		for _, c := range p.Children {
			writeBodyStructure(w, c, ext)
		}
		w.sp()
		w.str(strings.ToUpper(p.Subtype))
		if ext {
			w.sp()
			writeParams(w, p.Params)
			w.sp()
			writeExt(w, p)
		}
		w.WriteByte(')')
		return
	}
	w.WriteByte('(')
	w.str(strings.ToUpper(p.Type))
	w.sp()
	w.str(strings.ToUpper(p.Subtype))
	w.sp()
	writeParams(w, p.Params)
	w.sp()
	w.nstr(p.ID)
	w.sp()
	w.nstr(p.Description)
	w.sp()
	enc := p.Encoding
	if enc == "" {
		enc = "7bit"
	}
	w.str(strings.ToUpper(enc))
	w.sp()
	w.num(uint64(max(p.Size, 0)))
	switch {
	case p.Message != nil:
		w.sp()
		env := p.Envelope
		if env == nil {
			env = &mailmeta.Envelope{}
		}
		writeEnvelope(w, env)
		w.sp()
		writeBodyStructure(w, p.Message, ext)
		w.sp()
		w.num(uint64(max(p.Lines, 0)))
	case p.Type == "text":
		w.sp()
		w.num(uint64(max(p.Lines, 0)))
	}
	if ext {
		w.sp()
		w.nstr(p.MD5)
		w.sp()
		writeExt(w, p)
	}
	w.WriteByte(')')
}

// writeExt writes body-fld-dsp, body-fld-lang and body-fld-loc.
func writeExt(w *writer, p *mailmeta.Part) {
	if p.Disposition == "" {
		w.WriteString("NIL")
	} else {
		w.WriteByte('(')
		w.str(strings.ToUpper(p.Disposition))
		w.sp()
		writeParams(w, p.DispositionParams)
		w.WriteByte(')')
	}
	w.sp()
	switch len(p.Language) {
	case 0:
		w.WriteString("NIL")
	case 1:
		w.str(p.Language[0])
	default:
		w.WriteByte('(')
		for i, l := range p.Language {
			if i > 0 {
				w.sp()
			}
			w.str(l)
		}
		w.WriteByte(')')
	}
	w.sp()
	w.nstr(p.Location)
}
