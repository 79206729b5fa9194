package imap

import (
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/stoa-mail/stoa/frontend/imap/proto"
	"github.com/stoa-mail/stoa/storage"
)

// selected is the session's view of the selected mailbox: its own
// sequence numbers (RFC 9051 §2.3.1.2) and the updates not yet told.
type selected struct {
	id          uint32
	name        string
	readOnly    bool
	uidValidity uint32
	uids        []uint32 // seq-1 → UID, ascending
	exists      int      // EXISTS count the client knows
	changeSeq   uint64   // change log read up to here
	pendingExp  map[uint32]struct{}
	pendingFlag map[uint32]struct{}
	ownFlags    map[uint64]struct{} // MODSEQs of this session's STOREs, already reported
}

// ival is an inclusive interval of indexes into selected.uids.
type ival struct{ i, j int }

func (sel *selected) index(uid uint32) int {
	k := sort.Search(len(sel.uids), func(k int) bool { return sel.uids[k] >= uid })
	if k < len(sel.uids) && sel.uids[k] == uid {
		return k
	}
	return -1
}

// resolve maps a sequence set or UID set onto merged index intervals.
func (s *session) resolve(set proto.NumSet, uid bool) ([]ival, error) {
	sel := s.sel
	n := len(sel.uids)
	var out []ival
	if set.Saved { // RFC 5182 §2.1
		for _, u := range s.saved {
			if k := sel.index(u); k >= 0 {
				out = append(out, ival{k, k})
			}
		}
		return mergeIvals(out), nil
	}
	for _, r := range set.Ranges {
		if uid {
			lo, hi := r.Lo, r.Hi
			var star uint32
			if n > 0 {
				star = sel.uids[n-1]
			}
			if lo == 0 {
				lo = star
			}
			if hi == 0 {
				hi = star
			}
			if lo > hi {
				lo, hi = hi, lo
			}
			i := sort.Search(n, func(k int) bool { return sel.uids[k] >= lo })
			j := sort.Search(n, func(k int) bool { return sel.uids[k] > hi }) - 1
			if i <= j {
				out = append(out, ival{i, j})
			}
			continue
		}
		lo, hi := int(r.Lo), int(r.Hi)
		if lo == 0 {
			lo = n
		}
		if hi == 0 {
			hi = n
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if lo < 1 || hi > n {
			return nil, bad("Invalid message sequence number")
		}
		out = append(out, ival{lo - 1, hi - 1})
	}
	return mergeIvals(out), nil
}

func mergeIvals(in []ival) []ival {
	if len(in) < 2 {
		return in
	}
	sort.Slice(in, func(a, b int) bool { return in[a].i < in[b].i })
	out := in[:1]
	for _, x := range in[1:] {
		last := &out[len(out)-1]
		if x.i <= last.j+1 {
			last.j = max(last.j, x.j)
		} else {
			out = append(out, x)
		}
	}
	return out
}

func (sel *selected) uidsOf(iv []ival) []uint32 {
	var out []uint32
	for _, x := range iv {
		out = append(out, sel.uids[x.i:x.j+1]...)
	}
	return out
}

// mailboxArg decodes a mailbox name argument: modified UTF-7 unless
// UTF8=ACCEPT is enabled (RFC 6855 §3).
func (s *session) mailboxArg(v proto.Value) (string, error) {
	name, ok := v.AString()
	if !ok {
		return "", bad("Expected a mailbox name")
	}
	if storage.IsInbox(name) {
		return "INBOX", nil
	}
	if !s.w.utf8 {
		dec, ok := proto.DecodeUTF7(name)
		if !ok {
			return "", no("CANNOT", "Invalid modified UTF-7 mailbox name")
		}
		name = dec
	}
	return name, nil
}

func (s *session) unselect() {
	s.sel = nil
	s.saved = nil // RFC 5182 §2.1: $ belongs to the selected mailbox
	if s.state == stateSelected {
		s.state = stateAuth
	}
}

// cmdSelect: SELECT/EXAMINE (RFC 9051 §6.3.2) with CONDSTORE and QRESYNC
// parameters (RFC 7162 §3.1.8, §3.2.5).
func cmdSelect(s *session, c *proto.Command) error {
	if len(c.Args) < 1 || len(c.Args) > 2 {
		return bad("Expected a mailbox name")
	}
	var qr *proto.Value
	condstore := false
	if len(c.Args) == 2 {
		if c.Args[1].Kind != proto.List {
			return bad("Bad select parameters")
		}
		ps := c.Args[1].L
		for i := 0; i < len(ps); i++ {
			if ps[i].Kind != proto.Atom {
				return bad("Bad select parameter")
			}
			switch strings.ToUpper(ps[i].S) {
			case "CONDSTORE":
				condstore = true
			case "QRESYNC":
				if !s.qresync {
					return bad("QRESYNC not enabled")
				}
				if i+1 >= len(ps) || ps[i+1].Kind != proto.List {
					return bad("Bad QRESYNC parameter")
				}
				qr = &ps[i+1]
				i++
			default:
				return bad("Unknown select parameter")
			}
		}
	}
	name, err := s.mailboxArg(c.Args[0])
	if err != nil {
		return err
	}
	// QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]])
	var qUIDValidity uint32
	var qModSeq uint64
	var qKnown *proto.NumSet
	if qr != nil {
		l := qr.L
		var ok1, ok2 bool
		if len(l) >= 2 {
			qUIDValidity, ok1 = proto.Number(l[0])
			qModSeq, ok2 = proto.Number64(l[1])
		}
		if !ok1 || !ok2 || qUIDValidity == 0 || len(l) > 4 {
			return bad("Bad QRESYNC parameter")
		}
		if len(l) >= 3 && l[2].Kind == proto.Atom {
			set, err := proto.ParseNumSet(l[2].S)
			if err != nil || set.Saved {
				return bad("Bad known UIDs")
			}
			qKnown = &set
		} else if len(l) >= 3 && l[2].Kind != proto.List {
			return bad("Bad known UIDs")
		}
	}
	if s.sel != nil {
		s.unselect()
		if s.qresync || s.rev2 {
			s.w.WriteString("* OK [CLOSED] Previous mailbox closed\r\n") // RFC 7162 §3.2.11
		}
	}
	if condstore {
		s.condstore = true
	}
	st, err := s.srv.store.State(s.ctx, s.acct.ID)
	if err != nil {
		return err
	}
	mb, err := s.srv.store.MailboxByName(s.ctx, s.acct.ID, name)
	if err != nil {
		return err
	}
	uids, err := s.srv.store.AllUIDs(s.ctx, s.acct.ID, mb.ID)
	if err != nil {
		return err
	}
	sel := &selected{id: mb.ID, name: mb.Name, readOnly: c.Name == "EXAMINE", uidValidity: mb.UIDValidity,
		uids: uids, exists: len(uids), changeSeq: st.ModSeq,
		pendingExp: map[uint32]struct{}{}, pendingFlag: map[uint32]struct{}{}, ownFlags: map[uint64]struct{}{}}
	w := &s.w
	w.WriteString(`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)` + "\r\n")
	if sel.readOnly {
		w.WriteString("* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n")
	} else {
		w.WriteString(`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Flags permitted` + "\r\n")
	}
	w.WriteString("* ")
	w.num(uint64(len(uids)))
	w.WriteString(" EXISTS\r\n")
	if !s.rev2 {
		w.WriteString("* 0 RECENT\r\n")
	}
	w.WriteString("* OK [UIDVALIDITY ")
	w.num(uint64(mb.UIDValidity))
	w.WriteString("] UIDs valid\r\n* OK [UIDNEXT ")
	w.num(uint64(mb.UIDNext))
	w.WriteString("] Predicted next UID\r\n* OK [HIGHESTMODSEQ ")
	w.num(max(mb.HighestModSeq, 1))
	w.WriteString("] Highest\r\n")
	s.sel = sel
	s.saved = nil // RFC 5182 §2.1: SELECT and EXAMINE reset $
	s.state = stateSelected
	s.lastPoll = time.Now()
	if qr != nil && qUIDValidity == mb.UIDValidity {
		if err := s.qresyncSelect(qModSeq, qKnown); err != nil {
			return err
		}
	}
	if sel.readOnly {
		s.okCode = "READ-ONLY"
	} else {
		s.okCode = "READ-WRITE"
	}
	s.okText = "Selected"
	return nil
}

// qresyncSelect reports what changed since modseq (RFC 7162 §3.2.5.1).
func (s *session) qresyncSelect(since uint64, known *proto.NumSet) error {
	sel := s.sel
	changed, vanished, err := s.srv.store.ChangedSince(s.ctx, s.acct.ID, sel.id, since)
	if errors.Is(err, storage.ErrChangesTruncated) {
		// The log no longer reaches back: every known UID that is gone.
		vanished = nil
		var maxUID uint32
		if len(sel.uids) > 0 {
			maxUID = sel.uids[len(sel.uids)-1]
		}
		if known != nil {
			for _, r := range known.Ranges {
				lo, hi := r.Lo, r.Hi
				if lo == 0 {
					lo = maxUID
				}
				if hi == 0 {
					hi = maxUID
				}
				if lo > hi {
					lo, hi = hi, lo
				}
				if hi-lo > 1<<20 {
					hi = lo + 1<<20
				}
				for u := lo; u <= hi && u != 0 && len(vanished) < 1<<20; u++ {
					if sel.index(u) < 0 {
						vanished = append(vanished, u)
					}
				}
			}
		} else {
			prev := uint32(0)
			for _, u := range sel.uids {
				for x := prev + 1; x < u && len(vanished) < 1<<20; x++ {
					vanished = append(vanished, x)
				}
				prev = u
			}
		}
	} else if err != nil {
		return err
	}
	var vs []uint32
	for _, u := range vanished {
		if sel.index(u) < 0 && (known == nil || known.Contains(u, ^uint32(0))) {
			vs = append(vs, u)
		}
	}
	sort.Slice(vs, func(a, b int) bool { return vs[a] < vs[b] })
	vs = dedupe(vs)
	if len(vs) > 0 {
		s.w.WriteString("* VANISHED (EARLIER) ")
		s.w.numSet(vs)
		s.w.WriteString("\r\n")
	}
	for _, e := range changed {
		k := sel.index(e.UID)
		if k < 0 {
			continue
		}
		s.writeFlagsFetch(k+1, &e, true)
	}
	return nil
}

func dedupe(xs []uint32) []uint32 {
	out := xs[:0]
	for i, x := range xs {
		if i == 0 || x != xs[i-1] {
			out = append(out, x)
		}
	}
	return out
}

func (s *session) writeFlagsFetch(seq int, e *storage.Email, withUID bool) {
	w := &s.w
	w.WriteString("* ")
	w.num(uint64(seq))
	w.WriteString(" FETCH (")
	if withUID {
		w.WriteString("UID ")
		w.num(uint64(e.UID))
		w.sp()
	}
	w.WriteString("FLAGS ")
	writeFlags(w, e.Flags)
	if s.condstore {
		w.WriteString(" MODSEQ (")
		w.num(e.ModSeq)
		w.WriteByte(')')
	}
	w.WriteString(")\r\n")
}

func writeFlags(w *writer, flags []string) {
	w.WriteByte('(')
	for i, f := range flags {
		if i > 0 {
			w.sp()
		}
		w.WriteString(f)
	}
	w.WriteByte(')')
}

// sync reads changes made by others (Store.Watch on this node, polling
// for other nodes) and tells them; EXPUNGE only when allowed (RFC 9051
// §7.5.1: never during FETCH, STORE or SEARCH by sequence number).
func (s *session) sync(allowExp bool) error {
	due := time.Since(s.lastPoll) >= s.srv.cfg.PollInterval
	select {
	case <-s.watch:
		due = true
	default:
	}
	if due {
		if err := s.poll(); err != nil {
			return err
		}
	}
	return s.flushUpdates(allowExp)
}

func (s *session) poll() error {
	sel := s.sel
	s.lastPoll = time.Now()
	if sel == nil {
		return nil
	}
	limit := 1000
	for {
		cs, err := s.srv.store.Changes(s.ctx, s.acct.ID, sel.changeSeq, limit)
		if errors.Is(err, storage.ErrChangesTruncated) {
			return s.resync()
		}
		if err != nil {
			return err
		}
		full := len(cs) == limit
		if full {
			// Records of one mutation share a Seq: never stop inside one.
			last := cs[len(cs)-1].Seq
			k := len(cs)
			for k > 0 && cs[k-1].Seq == last {
				k--
			}
			if k == 0 {
				limit *= 4
				continue
			}
			cs = cs[:k]
		}
		for i := range cs {
			s.apply(&cs[i])
			sel.changeSeq = cs[i].Seq
		}
		if !full {
			return nil
		}
	}
}

func (s *session) apply(c *storage.Change) {
	sel := s.sel
	if c.Mailbox != sel.id {
		return
	}
	switch c.Kind {
	case storage.ChangeEmailAdd:
		for _, u := range c.UIDs {
			if len(sel.uids) == 0 || u > sel.uids[len(sel.uids)-1] {
				sel.uids = append(sel.uids, u)
			}
		}
	case storage.ChangeEmailFlags:
		if _, own := sel.ownFlags[c.Seq]; own {
			delete(sel.ownFlags, c.Seq)
			return
		}
		for _, u := range c.UIDs {
			if sel.index(u) >= 0 {
				sel.pendingFlag[u] = struct{}{}
			}
		}
	case storage.ChangeEmailExpunge:
		for _, u := range c.UIDs {
			if sel.index(u) >= 0 {
				sel.pendingExp[u] = struct{}{}
			}
		}
	case storage.ChangeMailboxDelete:
		for _, u := range sel.uids {
			sel.pendingExp[u] = struct{}{}
		}
	}
}

// resync rebuilds the view when the change log was trimmed past it.
func (s *session) resync() error {
	sel := s.sel
	st, err := s.srv.store.State(s.ctx, s.acct.ID)
	if err != nil {
		return err
	}
	now, err := s.srv.store.AllUIDs(s.ctx, s.acct.ID, sel.id)
	if err != nil {
		return err
	}
	have := map[uint32]bool{}
	for _, u := range now {
		have[u] = true
	}
	for _, u := range sel.uids {
		if !have[u] {
			sel.pendingExp[u] = struct{}{}
		} else {
			sel.pendingFlag[u] = struct{}{}
		}
	}
	for _, u := range now {
		if len(sel.uids) == 0 || u > sel.uids[len(sel.uids)-1] {
			sel.uids = append(sel.uids, u)
		}
	}
	sel.changeSeq = st.ModSeq
	return nil
}

func (s *session) flushUpdates(allowExp bool) error {
	sel := s.sel
	if sel == nil {
		return nil
	}
	w := &s.w
	if allowExp && len(sel.pendingExp) > 0 {
		var gone []uint32
		keep := sel.uids[:0:0]
		if !s.qresync {
			for k := len(sel.uids) - 1; k >= 0; k-- {
				if _, ok := sel.pendingExp[sel.uids[k]]; ok {
					w.WriteString("* ")
					w.num(uint64(k + 1))
					w.WriteString(" EXPUNGE\r\n")
				}
			}
		}
		for _, u := range sel.uids {
			if _, ok := sel.pendingExp[u]; ok {
				gone = append(gone, u)
				delete(sel.pendingFlag, u)
			} else {
				keep = append(keep, u)
			}
		}
		if s.qresync && len(gone) > 0 { // RFC 7162 §3.2.10
			w.WriteString("* VANISHED ")
			w.numSet(gone)
			w.WriteString("\r\n")
		}
		sel.exists -= len(gone)
		sel.uids = keep
		clear(sel.pendingExp)
	}
	if len(sel.uids) > sel.exists {
		sel.exists = len(sel.uids)
		w.WriteString("* ")
		w.num(uint64(sel.exists))
		w.WriteString(" EXISTS\r\n")
	}
	if len(sel.pendingFlag) > 0 {
		uids := make([]uint32, 0, len(sel.pendingFlag))
		for u := range sel.pendingFlag {
			uids = append(uids, u)
		}
		clear(sel.pendingFlag)
		sort.Slice(uids, func(a, b int) bool { return uids[a] < uids[b] })
		for len(uids) > 0 {
			page, err := s.srv.store.Emails(s.ctx, s.acct.ID, sel.id, uids[0], uids[len(uids)-1], 1000)
			if err != nil {
				return err
			}
			k := 0
			for i := range page {
				e := &page[i]
				for k < len(uids) && uids[k] < e.UID {
					k++
				}
				if k < len(uids) && uids[k] == e.UID {
					if idx := sel.index(e.UID); idx >= 0 {
						s.writeFlagsFetch(idx+1, e, true)
					}
				}
			}
			if len(page) < 1000 {
				break
			}
			next := page[len(page)-1].UID
			for len(uids) > 0 && uids[0] <= next {
				uids = uids[1:]
			}
		}
	}
	return nil
}

// cmdIdle: RFC 2177 / RFC 9051 §6.3.13. Pending updates go out at once;
// changes are pushed as they happen; "DONE" is accepted in any case.
func cmdIdle(s *session, c *proto.Command) error {
	if len(c.Args) != 0 {
		return bad("IDLE takes no arguments")
	}
	s.w.WriteString("+ idling\r\n")
	if s.sel != nil {
		if err := s.poll(); err != nil {
			return err
		}
		if err := s.flushUpdates(true); err != nil {
			return err
		}
	}
	if err := s.flush(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.IdleTimeout))
		line, err := s.rd.ReadLine(nil)
		if err == nil && !strings.EqualFold(strings.TrimSpace(string(line)), "DONE") {
			err = errBadDone
			if endsInLiteral(line) {
				err = errBadDoneLiteral
			}
		}
		done <- err
	}()
	poll := time.NewTicker(s.srv.cfg.PollInterval)
	defer poll.Stop()
	keep := time.NewTicker(s.srv.cfg.KeepAlive)
	defer keep.Stop()
	for {
		var err error
		select {
		case err = <-done:
			if err == errBadDone || err == proto.ErrLineTooLong {
				return bad("Expected DONE")
			}
			if err == errBadDoneLiteral {
				// A command with a literal instead of DONE: its bytes
				// would be read as commands. End the session instead.
				s.w.WriteString("* BYE Expected DONE, got a command with a literal\r\n")
				s.flush()
				return errLogout
			}
			if err != nil {
				return err
			}
			return nil
		case <-s.watch:
			err = s.idleUpdate()
		case <-poll.C:
			err = s.idleUpdate()
		case <-keep.C:
			s.w.WriteString("* OK Still here\r\n")
			err = s.flush()
		}
		if err != nil {
			s.conn.Close()
			<-done
			return err
		}
	}
}

var (
	errBadDone        = errors.New("expected DONE")
	errBadDoneLiteral = errors.New("expected DONE, got a literal")
)

// endsInLiteral reports a line announcing a literal: "{n}", "{n+}" or
// "~{n}" at its end (RFC 9051 §4.3, RFC 7888).
func endsInLiteral(line []byte) bool {
	l := strings.TrimRight(string(line), "\r\n")
	if !strings.HasSuffix(l, "}") {
		return false
	}
	i := strings.LastIndexByte(l, '{')
	if i < 0 {
		return false
	}
	n := strings.TrimSuffix(l[i+1:len(l)-1], "+")
	return n != "" && strings.Trim(n, "0123456789") == ""
}

func (s *session) idleUpdate() error {
	if s.sel == nil {
		return nil
	}
	if err := s.poll(); err != nil {
		return err
	}
	if err := s.flushUpdates(true); err != nil {
		return err
	}
	return s.flush()
}

// cmdClose: CLOSE expunges silently (RFC 9051 §6.4.1); UNSELECT does not
// (RFC 3691).
func cmdClose(s *session, c *proto.Command) error {
	if len(c.Args) != 0 {
		return bad("No arguments expected")
	}
	if c.Name == "CLOSE" && !s.sel.readOnly {
		if _, err := s.srv.store.Expunge(s.ctx, s.acct.ID, s.sel.id, nil); err != nil {
			return err
		}
	}
	s.unselect()
	return nil
}

// cmdExpunge: EXPUNGE and UID EXPUNGE (RFC 9051 §6.4.3, §6.4.9).
func cmdExpunge(s *session, c *proto.Command) error {
	if s.sel.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	var uids []uint32
	if c.UID {
		if len(c.Args) != 1 || c.Args[0].Kind != proto.Atom {
			return bad("UID EXPUNGE expects a UID set")
		}
		set, err := proto.ParseNumSet(c.Args[0].S)
		if err != nil {
			return bad("Bad UID set")
		}
		iv, err := s.resolve(set, true)
		if err != nil {
			return err
		}
		uids = s.sel.uidsOf(iv)
		if len(uids) == 0 {
			return nil
		}
	} else if len(c.Args) != 0 {
		return bad("EXPUNGE takes no arguments")
	}
	res, err := s.srv.store.Expunge(s.ctx, s.acct.ID, s.sel.id, uids)
	if err != nil {
		return err
	}
	for _, u := range res.UIDs {
		if s.sel.index(u) >= 0 {
			s.sel.pendingExp[u] = struct{}{}
		}
	}
	if s.condstore && res.ModSeq > 0 {
		s.okCode = "HIGHESTMODSEQ " + itoa(int64(res.ModSeq))
	}
	return nil
}

// cmdStore: STORE with CONDSTORE UNCHANGEDSINCE (RFC 9051 §6.4.6,
// RFC 7162 §3.1.3).
func cmdStore(s *session, c *proto.Command) error {
	args := c.Args
	if len(args) < 3 || args[0].Kind != proto.Atom {
		return bad("STORE expects a set, an item and flags")
	}
	set, err := proto.ParseNumSet(args[0].S)
	if err != nil {
		return bad("Bad sequence set")
	}
	var opts storage.StoreOptions
	rest := args[1:]
	if rest[0].Kind == proto.List {
		l := rest[0].L
		if len(l) != 2 || l[0].Kind != proto.Atom || !strings.EqualFold(l[0].S, "UNCHANGEDSINCE") {
			return bad("Bad STORE modifier")
		}
		v, ok := proto.Number64(l[1])
		if !ok {
			return bad("Bad UNCHANGEDSINCE")
		}
		opts = storage.StoreOptions{UnchangedSince: v, HasUnchangedSince: true}
		s.condstore = true
		rest = rest[1:]
	}
	if len(rest) < 2 || rest[0].Kind != proto.Atom {
		return bad("STORE expects an item and flags")
	}
	item := strings.ToUpper(rest[0].S)
	silent := strings.HasSuffix(item, ".SILENT")
	item = strings.TrimSuffix(item, ".SILENT")
	var op storage.FlagOp
	switch item {
	case "FLAGS":
		op = storage.FlagsSet
	case "+FLAGS":
		op = storage.FlagsAdd
	case "-FLAGS":
		op = storage.FlagsRemove
	default:
		return bad("Unknown STORE item")
	}
	var flags []string
	if len(rest) == 2 {
		flags, err = proto.Flags(rest[1])
	} else {
		flags, err = proto.Flags(proto.Value{Kind: proto.List, L: rest[1:]})
	}
	if err != nil {
		return bad("Bad flags")
	}
	if s.sel.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	iv, err := s.resolve(set, c.UID)
	if err != nil {
		return err
	}
	uids := s.sel.uidsOf(iv)
	if len(uids) == 0 {
		return nil
	}
	res, err := s.srv.store.StoreFlags(s.ctx, s.acct.ID, s.sel.id, uids, op, flags, opts)
	if err != nil {
		return err
	}
	failed := map[uint32]bool{}
	for _, u := range res.Failed {
		failed[u] = true
	}
	if !silent {
		// Current flags of every message of the set (RFC 9051 §6.4.6).
		items := []proto.FetchItem{{Name: "FLAGS"}}
		if c.UID {
			items = append(items, proto.FetchItem{Name: "UID"})
		}
		if s.condstore {
			items = append(items, proto.FetchItem{Name: "MODSEQ"})
		}
		err := s.fetchStream(iv, items, func(e *storage.Email) bool { return !failed[e.UID] }, false)
		if err != nil {
			return err // made but not reported: the next update reports it
		}
	} else if opts.HasUnchangedSince {
		// RFC 7162 §3.1.3: MODSEQ is reported even with .SILENT.
		for i := range res.Changed {
			e := &res.Changed[i]
			if k := s.sel.index(e.UID); k >= 0 {
				s.w.WriteString("* ")
				s.w.num(uint64(k + 1))
				s.w.WriteString(" FETCH (UID ")
				s.w.num(uint64(e.UID))
				s.w.WriteString(" MODSEQ (")
				s.w.num(e.ModSeq)
				s.w.WriteString("))\r\n")
			}
		}
	}
	if len(res.Failed) > 0 {
		var ns []uint32
		for _, u := range res.Failed {
			if c.UID {
				ns = append(ns, u)
			} else if k := s.sel.index(u); k >= 0 {
				ns = append(ns, uint32(k+1))
			}
		}
		sort.Slice(ns, func(a, b int) bool { return ns[a] < ns[b] })
		s.okCode = "MODIFIED " + numSetString(ns)
		s.okText = "Conditional STORE failed"
	}
	if res.ModSeq > 0 {
		s.sel.ownFlags[res.ModSeq] = struct{}{} // reported (or .SILENT): not again
	}
	return nil
}

// cmdCopy: COPY and MOVE (RFC 9051 §6.4.7, §6.4.8) with COPYUID
// (RFC 4315 §3).
func cmdCopy(s *session, c *proto.Command) error {
	if len(c.Args) != 2 || c.Args[0].Kind != proto.Atom {
		return bad("Expected a set and a mailbox")
	}
	set, err := proto.ParseNumSet(c.Args[0].S)
	if err != nil {
		return bad("Bad sequence set")
	}
	name, err := s.mailboxArg(c.Args[1])
	if err != nil {
		return err
	}
	if c.Name == "MOVE" && s.sel.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	iv, err := s.resolve(set, c.UID)
	if err != nil {
		return err
	}
	dst, err := s.srv.store.MailboxByName(s.ctx, s.acct.ID, name)
	if errors.Is(err, storage.ErrNoSuchMailbox) {
		return no("TRYCREATE", "No such mailbox")
	} else if err != nil {
		return err
	}
	uids := s.sel.uidsOf(iv)
	if len(uids) == 0 {
		return nil
	}
	var res storage.CopyResult
	if c.Name == "MOVE" {
		res, err = s.srv.store.Move(s.ctx, s.acct.ID, s.sel.id, uids, dst.ID)
	} else {
		res, err = s.srv.store.Copy(s.ctx, s.acct.ID, s.sel.id, uids, dst.ID)
	}
	if err != nil {
		return err
	}
	code := ""
	if len(res.Src) > 0 {
		code = "COPYUID " + itoa(int64(res.UIDValidity)) + " " + numSetString(res.Src) + " " + numSetString(res.Dst)
	}
	if c.Name == "MOVE" {
		if code != "" {
			s.w.WriteString("* OK [" + code + "] Moved\r\n") // RFC 6851 §4.3
		}
		for _, u := range res.Src {
			s.sel.pendingExp[u] = struct{}{}
		}
		return nil
	}
	s.okCode = code
	return nil
}
