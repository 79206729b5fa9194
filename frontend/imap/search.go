package imap

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/stoa-mail/stoa/frontend/imap/proto"
	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/mailmeta"
)

// msg is one message under evaluation; metadata, blob and text load lazily.
type msg struct {
	s     *session
	e     *storage.Email
	seq   uint32
	meta  *mailmeta.Meta
	text  *mailmeta.Text
	match func(TextQuery) bool // from the Searcher's Matcher
	err   error
}

func (m *msg) getMeta() *mailmeta.Meta {
	if m.meta == nil && m.err == nil {
		m.meta, m.err = m.s.srv.store.Meta(m.s.ctx, m.e.BlobID)
		if m.meta == nil {
			m.meta = &mailmeta.Meta{}
		}
	}
	return m.meta
}

func (m *msg) getText() *mailmeta.Text {
	if m.text == nil && m.err == nil {
		raw, err := m.s.srv.store.Blob(m.s.ctx, m.e.BlobID)
		if err != nil {
			m.err = err
			m.text = &mailmeta.Text{}
			return m.text
		}
		t := mailmeta.ExtractText(raw, m.s.srv.store.Config().ParseLimits, 4<<20)
		m.text = &t
	}
	return m.text
}

func contains(hay, lowNeedle string) bool {
	return strings.Contains(strings.ToLower(hay), lowNeedle)
}

// headerContains matches the decoded value (RFC 2047 encoded words; RFC
// 9051 §6.4.4 searches decoded strings).
func (m *msg) headerContains(name, low string) bool {
	for _, h := range m.getMeta().Headers {
		if strings.EqualFold(h.Name, name) && (low == "" || contains(mailmeta.DecodeWords(h.Value), low)) {
			return true
		}
	}
	return false
}

func anyContains(vs []string, low string) bool {
	for _, v := range vs {
		if contains(v, low) {
			return true
		}
	}
	return false
}

func addrsContain(as []mailmeta.Addr, low string) bool {
	for _, a := range as {
		if contains(a.Name, low) || contains(a.Email, low) {
			return true
		}
	}
	return false
}

// textMatch scans: with the index's word semantics when the Searcher is a
// Matcher, else case-insensitive substring (RFC 9051 §6.4.4).
func (m *msg) textMatch(k *proto.SearchKey) bool {
	if mt, ok := m.s.srv.Searcher.(Matcher); ok {
		if m.match == nil {
			raw, err := m.s.srv.store.Blob(m.s.ctx, m.e.BlobID)
			if err != nil {
				m.err = err
				return false
			}
			m.match = mt.Prepare(m.s.acct.ID, m.e, m.getMeta(), raw)
		}
		return m.match(textQuery(k))
	}
	low := strings.ToLower(k.Str)
	meta := m.getMeta()
	switch k.Op {
	case "SUBJECT":
		return contains(meta.Subject, low) || m.headerContains("Subject", low)
	case "FROM":
		return addrsContain(meta.From, low) || m.headerContains("From", low)
	case "TO":
		return addrsContain(meta.To, low) || m.headerContains("To", low)
	case "CC":
		return addrsContain(meta.Cc, low) || m.headerContains("Cc", low)
	case "BCC":
		return addrsContain(meta.Bcc, low) || m.headerContains("Bcc", low)
	case "HEADER":
		return m.headerContains(k.Str, strings.ToLower(k.Value))
	case "BODY":
		t := m.getText()
		return contains(t.Plain, low) || contains(t.HTML, low) || anyContains(t.AttachmentNames, low)
	case "TEXT":
		for _, h := range meta.Headers {
			if contains(mailmeta.DecodeWords(h.Value), low) || contains(h.Name, low) {
				return true
			}
		}
		t := m.getText()
		return contains(meta.Subject, low) || contains(t.Plain, low) || contains(t.HTML, low) || anyContains(t.AttachmentNames, low)
	}
	return false
}

func dayOf(t time.Time) time.Time {
	y, mo, d := t.Date()
	return time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
}

type evalCtx struct {
	s       *session
	maxSeq  uint32
	maxUID  uint32
	indexed map[*proto.SearchKey][]uint32 // ascending UIDs from the index
	saved   map[uint32]bool
	now     time.Time
}

func (c *evalCtx) match(k *proto.SearchKey, m *msg) bool {
	e := m.e
	switch k.Op {
	case "AND":
		for _, sk := range k.Sub {
			if !c.match(sk, m) {
				return false
			}
		}
		return true
	case "OR":
		return c.match(k.Sub[0], m) || c.match(k.Sub[1], m)
	case "NOT":
		return !c.match(k.Sub[0], m)
	case "ALL", "OLD":
		return true
	case "NEW", "RECENT":
		return false // \Recent is not kept (RFC 9051 removed it)
	case "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN":
		return e.HasFlag(`\` + k.Op[:1] + strings.ToLower(k.Op[1:]))
	case "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN":
		return !e.HasFlag(`\` + k.Op[2:3] + strings.ToLower(k.Op[3:]))
	case "KEYWORD":
		return e.HasFlag(k.Str)
	case "UNKEYWORD":
		return !e.HasFlag(k.Str)
	case "BEFORE":
		return dayOf(e.InternalDate).Before(k.Date)
	case "ON":
		return dayOf(e.InternalDate).Equal(k.Date)
	case "SINCE":
		return !dayOf(e.InternalDate).Before(k.Date)
	case "SENTBEFORE", "SENTON", "SENTSINCE":
		d := m.getMeta().Date
		if d.IsZero() {
			d = e.InternalDate
		}
		d = dayOf(d)
		switch k.Op {
		case "SENTBEFORE":
			return d.Before(k.Date)
		case "SENTON":
			return d.Equal(k.Date)
		}
		return !d.Before(k.Date)
	case "LARGER":
		return uint64(e.Size) > k.Num
	case "SMALLER":
		return uint64(e.Size) < k.Num
	case "YOUNGER": // RFC 5032
		return c.now.Sub(e.InternalDate) <= time.Duration(k.Num)*time.Second
	case "OLDER":
		return c.now.Sub(e.InternalDate) >= time.Duration(k.Num)*time.Second
	case "MODSEQ":
		return e.ModSeq >= k.Num
	case "UID":
		if k.Set.Saved {
			return c.saved[e.UID]
		}
		return k.Set.Contains(e.UID, c.maxUID)
	case "SEQ":
		if k.Set.Saved {
			return c.saved[e.UID]
		}
		return k.Set.Contains(m.seq, c.maxSeq)
	}
	if set, ok := c.indexed[k]; ok {
		_, found := slices.BinarySearch(set, e.UID)
		return found
	}
	return m.textMatch(k)
}

// textQuery is the Searcher's form of a text key.
func textQuery(k *proto.SearchKey) TextQuery {
	if k.Op == "HEADER" {
		return TextQuery{Field: k.Op, Header: k.Str, Value: k.Value}
	}
	return TextQuery{Field: k.Op, Value: k.Str}
}

// prepareIndex asks the Searcher for each text key it can answer.
func (s *session) prepareIndex(k *proto.SearchKey, out map[*proto.SearchKey][]uint32) {
	if s.srv.Searcher == nil {
		return
	}
	switch k.Op {
	case "BODY", "TEXT", "SUBJECT", "FROM", "TO", "CC", "BCC", "HEADER":
		uids, ok, err := s.srv.Searcher.Search(s.ctx, s.acct.ID, s.sel.id, textQuery(k))
		if err != nil {
			s.srv.log.Warn("imap search index failed; scanning", "err", err)
			return
		}
		if ok {
			if !slices.IsSorted(uids) {
				slices.Sort(uids)
			}
			out[k] = uids
		}
	}
	for _, sk := range k.Sub {
		s.prepareIndex(sk, out)
	}
}

func usesModSeq(k *proto.SearchKey) bool {
	if k.Op == "MODSEQ" {
		return true
	}
	for _, s := range k.Sub {
		if usesModSeq(s) {
			return true
		}
	}
	return false
}

// checkSearchLimits refuses a search whose text keys are too long or too
// many (each text key is a phrase query, or a scan): NO [LIMIT] (RFC 9051
// §7.1).
func (s *session) checkSearchLimits(k *proto.SearchKey) error {
	n, terms := 0, 0
	var walk func(k *proto.SearchKey) error
	walk = func(k *proto.SearchKey) error {
		switch k.Op {
		case "BODY", "TEXT", "SUBJECT", "FROM", "TO", "CC", "BCC", "HEADER":
			if n++; n > s.srv.cfg.MaxSearchTextKeys {
				return no("LIMIT", fmt.Sprintf("More than %d text search keys", s.srv.cfg.MaxSearchTextKeys))
			}
			if len(k.Str)+len(k.Value) > s.srv.cfg.MaxSearchKeyLen {
				return no("LIMIT", fmt.Sprintf("Search string longer than %d bytes", s.srv.cfg.MaxSearchKeyLen))
			}
			// Each word is a term of a phrase query: a long phrase of a
			// frequent word costs a walk of its postings per word.
			if terms += countWords(k.Str) + countWords(k.Value); terms > s.srv.cfg.MaxSearchTerms {
				return no("LIMIT", fmt.Sprintf("More than %d words in the search strings", s.srv.cfg.MaxSearchTerms))
			}
		}
		for _, sk := range k.Sub {
			if err := walk(sk); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(k)
}

// countWords counts the runs of letters and digits in v (each Han or kana
// character counts apart, as the index's analysis splits them).
func countWords(v string) int {
	n, in := 0, false
	for _, r := range v {
		switch {
		case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana):
			n, in = n+1, false
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if !in {
				n++
			}
			in = true
		default:
			in = false
		}
	}
	return n
}

// needsRecord reports whether evaluating k needs the messages' stored
// records (flags, dates, sizes, MODSEQs, metadata, or a scan).
func needsRecord(k *proto.SearchKey, indexed map[*proto.SearchKey][]uint32) bool {
	switch k.Op {
	case "AND", "OR", "NOT":
		for _, sk := range k.Sub {
			if needsRecord(sk, indexed) {
				return true
			}
		}
		return false
	case "ALL", "OLD", "NEW", "RECENT", "UID", "SEQ":
		return false
	}
	_, ok := indexed[k]
	return !ok
}

// searchEach calls fn for every message of the view matching k, in order.
// With uidOnly, fn may get messages whose record holds only the UID (when
// the index answers every key, the records are not read: a frequent word
// in a 100,000-message mailbox would otherwise read all of them).
func (s *session) searchEach(k *proto.SearchKey, uidOnly bool, fn func(m *msg) error) error {
	if err := s.checkSearchLimits(k); err != nil {
		return err
	}
	sel := s.sel
	if len(sel.uids) == 0 {
		return nil
	}
	c := &evalCtx{s: s, maxSeq: uint32(len(sel.uids)), maxUID: lastUID(sel), now: time.Now(),
		indexed: map[*proto.SearchKey][]uint32{}, saved: map[uint32]bool{}}
	for _, u := range s.saved {
		c.saved[u] = true
	}
	s.prepareIndex(k, c.indexed)
	if set, ok := c.indexed[k]; ok && uidOnly {
		// One text key (the usual SEARCH TEXT): walk both sorted lists.
		e := &storage.Email{}
		m := &msg{s: s, e: e}
		i := 0
		for _, u := range set {
			for i < len(sel.uids) && sel.uids[i] < u {
				i++
			}
			if i == len(sel.uids) {
				break
			}
			if _, gone := sel.pendingExp[u]; sel.uids[i] == u && !gone {
				e.UID, m.seq = u, uint32(i+1)
				if err := fn(m); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if uidOnly && !needsRecord(k, c.indexed) {
		e := &storage.Email{}
		m := &msg{s: s, e: e}
		for i, u := range sel.uids {
			if i%4096 == 0 && s.ctx.Err() != nil { // imap.command_timeout
				return s.ctx.Err()
			}
			if _, gone := sel.pendingExp[u]; gone {
				continue // expunged, not yet announced: no record (like the scan)
			}
			e.UID, m.seq = u, uint32(i+1)
			if c.match(k, m) {
				if err := fn(m); err != nil {
					return err
				}
			}
		}
		return nil
	}
	from, to := sel.uids[0], lastUID(sel)
	k0 := 0
	for {
		page, err := s.srv.store.Emails(s.ctx, s.acct.ID, sel.id, from, to, fetchPage)
		if err != nil {
			return err
		}
		for i := range page {
			e := &page[i]
			for k0 < len(sel.uids) && sel.uids[k0] < e.UID {
				k0++
			}
			if k0 >= len(sel.uids) || sel.uids[k0] != e.UID {
				continue
			}
			if err := s.ctx.Err(); err != nil { // imap.command_timeout
				return err
			}
			m := &msg{s: s, e: e, seq: uint32(k0 + 1)}
			ok := c.match(k, m)
			if m.err != nil {
				return m.err
			}
			if ok {
				if err := fn(m); err != nil {
					return err
				}
			}
		}
		if len(page) < fetchPage {
			return nil
		}
		from = page[len(page)-1].UID + 1
	}
}

func checkCharset(cs string) error {
	switch cs {
	case "", "US-ASCII", "UTF-8":
		return nil
	}
	return no("BADCHARSET (US-ASCII UTF-8)", "Unsupported charset")
}

func searchErr(err error) error {
	var se *proto.SyntaxError
	if errors.As(err, &se) {
		return bad(se.Msg)
	}
	return err
}

// cmdSearch: SEARCH (RFC 9051 §6.4.4), ESEARCH (RFC 4731), SEARCHRES
// (RFC 5182), CONDSTORE MODSEQ (RFC 7162 §3.1.5).
func cmdSearch(s *session, c *proto.Command) error {
	err := search(s, c)
	if err != nil && proto.WantsSave(c.Args) {
		s.saved = nil // RFC 5182 §2.1: a SEARCH with SAVE that fails empties "$"
	}
	return err
}

func search(s *session, c *proto.Command) error {
	sc, err := proto.ParseSearch(c.Args)
	if err != nil {
		return searchErr(err)
	}
	if err := checkCharset(sc.Charset); err != nil {
		return err
	}
	modseq := usesModSeq(sc.Key)
	if modseq {
		s.condstore = true
	}
	var uids, nums []uint32
	var mods []uint64
	err = s.searchEach(sc.Key, true, func(m *msg) error {
		uids = append(uids, m.e.UID)
		if c.UID {
			nums = append(nums, m.e.UID)
		} else {
			nums = append(nums, m.seq)
		}
		if modseq {
			mods = append(mods, m.e.ModSeq)
		}
		return nil
	})
	if err != nil {
		return err
	}
	ret := sc.Return
	if sc.HasReturn && len(ret) == 0 {
		ret = []string{"ALL"}
	}
	save := false
	var others []string
	for _, r := range ret {
		if r == "SAVE" {
			save = true
		} else {
			others = append(others, r)
		}
	}
	if save {
		// RFC 5182 §2.4: with MIN and/or MAX but neither ALL nor COUNT,
		// only those messages are saved.
		minOnly, maxOnly, all := false, false, false
		for _, r := range others {
			switch r {
			case "MIN":
				minOnly = true
			case "MAX":
				maxOnly = true
			default:
				all = true
			}
		}
		switch {
		case all || (!minOnly && !maxOnly) || len(uids) == 0:
			s.saved = uids
		case minOnly && maxOnly && len(uids) > 1:
			s.saved = []uint32{uids[0], uids[len(uids)-1]}
		case minOnly:
			s.saved = []uint32{uids[0]}
		default:
			s.saved = []uint32{uids[len(uids)-1]}
		}
	}
	// RFC 7162 §3.1.5: the highest MODSEQ of the messages returned; with
	// only MIN and/or MAX, of those messages alone.
	var maxMod uint64
	if len(mods) > 0 {
		edges := len(others) > 0
		for _, r := range others {
			edges = edges && (r == "MIN" || r == "MAX")
		}
		for _, r := range others {
			switch {
			case !edges:
			case r == "MIN":
				maxMod = max(maxMod, mods[0])
			case r == "MAX":
				maxMod = max(maxMod, mods[len(mods)-1])
			}
		}
		if !edges {
			maxMod = slices.Max(mods)
		}
	}
	w := &s.w
	if !sc.HasReturn && !s.rev2 {
		w.WriteString("* SEARCH")
		for _, n := range nums {
			w.sp()
			w.num(uint64(n))
		}
		if modseq && len(nums) > 0 {
			w.WriteString(" (MODSEQ ")
			w.num(maxMod)
			w.WriteByte(')')
		}
		w.WriteString("\r\n")
		return nil
	}
	if !sc.HasReturn {
		others = []string{"ALL"}
	}
	if save && len(others) == 0 {
		return nil
	}
	w.WriteString(`* ESEARCH (TAG "` + c.Tag + `")`)
	if c.UID {
		w.WriteString(" UID")
	}
	for _, r := range others {
		switch r {
		case "MIN":
			if len(nums) > 0 {
				w.WriteString(" MIN ")
				w.num(uint64(nums[0]))
			}
		case "MAX":
			if len(nums) > 0 {
				w.WriteString(" MAX ")
				w.num(uint64(nums[len(nums)-1]))
			}
		case "COUNT":
			w.WriteString(" COUNT ")
			w.num(uint64(len(nums)))
		case "ALL":
			if len(nums) > 0 {
				w.WriteString(" ALL ")
				w.numSet(nums)
			}
		}
	}
	if modseq && len(nums) > 0 {
		w.WriteString(" MODSEQ ")
		w.num(maxMod)
	}
	w.WriteString("\r\n")
	return nil
}

type sortKey struct {
	name    string
	reverse bool
}

type sortItem struct {
	num  uint32
	seq  uint32
	keys []any
}

func addrKey(as []mailmeta.Addr) string {
	if len(as) == 0 {
		return ""
	}
	local, _, _ := strings.Cut(as[0].Email, "@")
	return strings.ToLower(local)
}

func displayKey(as []mailmeta.Addr) string {
	if len(as) == 0 {
		return ""
	}
	if as[0].Name != "" {
		return strings.ToLower(as[0].Name)
	}
	return strings.ToLower(as[0].Email)
}

func sentDate(m *msg) time.Time {
	if d := m.getMeta().Date; !d.IsZero() {
		return d
	}
	return m.e.InternalDate
}

// cmdSort: SORT (RFC 5256 §3) with DISPLAY (RFC 5957).
func cmdSort(s *session, c *proto.Command) error {
	if len(c.Args) < 3 || c.Args[0].Kind != proto.List || len(c.Args[0].L) == 0 {
		return bad("SORT expects criteria, a charset and keys")
	}
	var keys []sortKey
	rev := false
	for _, v := range c.Args[0].L {
		u := strings.ToUpper(v.S)
		switch u {
		case "REVERSE":
			rev = true
			continue
		case "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO":
		default:
			return bad("Unknown sort criterion")
		}
		keys = append(keys, sortKey{u, rev})
		rev = false
	}
	if rev || len(keys) == 0 {
		return bad("Bad sort criteria")
	}
	cs, _ := c.Args[1].AString()
	if err := checkCharset(strings.ToUpper(cs)); err != nil {
		return err
	}
	k, err := proto.ParseSearchKeys(c.Args[2:])
	if err != nil {
		return searchErr(err)
	}
	var items []sortItem
	err = s.searchEach(k, false, func(m *msg) error {
		it := sortItem{num: m.seq, seq: m.seq}
		if c.UID {
			it.num = m.e.UID
		}
		for _, sk := range keys {
			var v any
			switch sk.name {
			case "ARRIVAL":
				v = m.e.InternalDate.UnixNano()
			case "DATE":
				v = sentDate(m).UnixNano()
			case "SIZE":
				v = m.e.Size
			case "SUBJECT":
				v = strings.ToLower(m.getMeta().BaseSubject)
			case "FROM":
				v = addrKey(m.getMeta().From)
			case "TO":
				v = addrKey(m.getMeta().To)
			case "CC":
				v = addrKey(m.getMeta().Cc)
			case "DISPLAYFROM":
				v = displayKey(m.getMeta().From)
			case "DISPLAYTO":
				v = displayKey(m.getMeta().To)
			}
			it.keys = append(it.keys, v)
		}
		items = append(items, it)
		return nil
	})
	if err != nil {
		return err
	}
	sort.SliceStable(items, func(a, b int) bool {
		for i, sk := range keys {
			c := cmpAny(items[a].keys[i], items[b].keys[i])
			if sk.reverse {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		return items[a].seq < items[b].seq
	})
	s.w.WriteString("* SORT")
	for _, it := range items {
		s.w.sp()
		s.w.num(uint64(it.num))
	}
	s.w.WriteString("\r\n")
	return nil
}

func cmpAny(a, b any) int {
	switch x := a.(type) {
	case int64:
		y := b.(int64)
		if x < y {
			return -1
		} else if x > y {
			return 1
		}
		return 0
	case string:
		return strings.Compare(x, b.(string))
	}
	return 0
}
