package imap

import (
	"errors"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/stoa-mail/stoa/frontend/imap/proto"
	"github.com/stoa-mail/stoa/storage"
)

var roleAttr = map[string]string{ // RFC 6154 §2
	storage.RoleSent: `\Sent`, storage.RoleDrafts: `\Drafts`, storage.RoleTrash: `\Trash`,
	storage.RoleJunk: `\Junk`, storage.RoleArchive: `\Archive`, "all": `\All`, "flagged": `\Flagged`,
}

func attrRole(attr string) (string, bool) {
	for r, a := range roleAttr {
		if strings.EqualFold(a, attr) {
			return r, true
		}
	}
	return "", false
}

func (s *session) sep() string { return s.srv.store.Config().Separator }

// cmdCreate: RFC 9051 §6.3.4 with CREATE-SPECIAL-USE (RFC 6154 §3).
func cmdCreate(s *session, c *proto.Command) error {
	if len(c.Args) < 1 || len(c.Args) > 2 {
		return bad("CREATE expects a mailbox name")
	}
	name, err := s.mailboxArg(c.Args[0])
	if err != nil {
		return err
	}
	name = strings.TrimSuffix(name, s.sep())
	if strings.ContainsAny(name, "%*") {
		return no("CANNOT", "Wildcards are not allowed in mailbox names")
	}
	role := ""
	if len(c.Args) == 2 {
		p := c.Args[1]
		if p.Kind != proto.List || len(p.L) != 2 || p.L[0].Kind != proto.Atom || !strings.EqualFold(p.L[0].S, "USE") || p.L[1].Kind != proto.List {
			return bad("Bad CREATE parameters")
		}
		for _, a := range p.L[1].L {
			r, ok := attrRole(a.S)
			if a.Kind != proto.Atom || !ok || len(p.L[1].L) > 1 {
				return no("USEATTR", "Unsupported special-use attribute")
			}
			role = r
		}
	}
	if storage.IsInbox(name) {
		return no("ALREADYEXISTS", "INBOX always exists")
	}
	_, err = s.srv.store.CreateMailbox(s.ctx, s.acct.ID, name, role)
	return err
}

func cmdDelete(s *session, c *proto.Command) error {
	if len(c.Args) != 1 {
		return bad("DELETE expects a mailbox name")
	}
	name, err := s.mailboxArg(c.Args[0])
	if err != nil {
		return err
	}
	return s.srv.store.DeleteMailbox(s.ctx, s.acct.ID, name)
}

func cmdRename(s *session, c *proto.Command) error {
	if len(c.Args) != 2 {
		return bad("RENAME expects two mailbox names")
	}
	from, err := s.mailboxArg(c.Args[0])
	if err != nil {
		return err
	}
	to, err := s.mailboxArg(c.Args[1])
	if err != nil {
		return err
	}
	return s.srv.store.RenameMailbox(s.ctx, s.acct.ID, from, strings.TrimSuffix(to, s.sep()))
}

func cmdSubscribe(s *session, c *proto.Command) error {
	if len(c.Args) != 1 {
		return bad("Expected a mailbox name")
	}
	name, err := s.mailboxArg(c.Args[0])
	if err != nil {
		return err
	}
	return s.srv.store.Subscribe(s.ctx, s.acct.ID, name, c.Name == "SUBSCRIBE")
}

func cmdNamespace(s *session, c *proto.Command) error {
	s.w.WriteString(`* NAMESPACE (("" `) // RFC 2342 §5
	s.w.str(s.sep())
	s.w.WriteString(")) NIL NIL\r\n")
	return nil
}

// patternRE compiles a LIST pattern: "*" matches all, "%" all but the
// separator (RFC 9051 §6.3.9).
func patternRE(pattern, sep string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '%':
			b.WriteString("[^" + regexp.QuoteMeta(sep) + "]*")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return regexp.MustCompile("^$.")
	}
	return re
}

type listOpts struct {
	subscribedSel, recursive, specialSel   bool
	retSubscribed, retChildren, retSpecial bool
	status                                 []string
}

// cmdList: LIST (RFC 9051 §6.3.9) with LIST-EXTENDED (RFC 5258),
// LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154); and LSUB (RFC 3501).
func cmdList(s *session, c *proto.Command) error {
	args := c.Args
	var o listOpts
	lsub := c.Name == "LSUB"
	if !lsub && len(args) > 0 && args[0].Kind == proto.List {
		for _, v := range args[0].L {
			switch strings.ToUpper(v.S) {
			case "SUBSCRIBED":
				o.subscribedSel = true
			case "REMOTE":
			case "RECURSIVEMATCH":
				o.recursive = true
			case "SPECIAL-USE":
				o.specialSel = true
			default:
				return bad("Unknown LIST selection option")
			}
		}
		if o.recursive && !o.subscribedSel {
			return bad("RECURSIVEMATCH needs another selection option")
		}
		args = args[1:]
	}
	if len(args) < 2 {
		return bad("LIST expects a reference and a pattern")
	}
	ref, ok := args[0].AString()
	if !ok {
		return bad("Bad reference")
	}
	var patterns []string
	if args[1].Kind == proto.List && !lsub {
		for _, p := range args[1].L {
			ps, ok := p.AString()
			if !ok {
				return bad("Bad pattern")
			}
			patterns = append(patterns, ps)
		}
	} else if ps, ok := args[1].AString(); ok {
		patterns = []string{ps}
	} else {
		return bad("Bad pattern")
	}
	args = args[2:]
	if len(args) > 0 {
		if len(args) != 2 || lsub || args[0].Kind != proto.Atom || !strings.EqualFold(args[0].S, "RETURN") || args[1].Kind != proto.List {
			return bad("Bad LIST return options")
		}
		ro := args[1].L
		for i := 0; i < len(ro); i++ {
			switch strings.ToUpper(ro[i].S) {
			case "SUBSCRIBED":
				o.retSubscribed = true
			case "CHILDREN":
				o.retChildren = true
			case "SPECIAL-USE":
				o.retSpecial = true
			case "STATUS":
				if i+1 >= len(ro) || ro[i+1].Kind != proto.List {
					return bad("Bad STATUS return option")
				}
				items, err := statusItems(ro[i+1].L)
				if err != nil {
					return err
				}
				o.status = items
				i++
			default:
				return bad("Unknown LIST return option")
			}
		}
	}
	if !s.w.utf8 {
		ref2, ok1 := proto.DecodeUTF7(ref)
		if !ok1 {
			return no("CANNOT", "Invalid modified UTF-7")
		}
		ref = ref2
		for i, p := range patterns {
			p2, ok := proto.DecodeUTF7(p)
			if !ok {
				return no("CANNOT", "Invalid modified UTF-7")
			}
			patterns[i] = p2
		}
	}
	sep := s.sep()
	resp := "LIST"
	if lsub {
		resp = "LSUB"
	}
	// LIST "" "": the hierarchy delimiter (RFC 9051 §6.3.9).
	if len(patterns) == 1 && patterns[0] == "" && !o.subscribedSel {
		s.w.WriteString("* " + resp + ` (\Noselect) `)
		s.w.str(sep)
		s.w.WriteString(` ""` + "\r\n")
		return nil
	}
	boxes, err := s.srv.store.Mailboxes(s.ctx, s.acct.ID)
	if err != nil {
		return err
	}
	subs, err := s.srv.store.Subscriptions(s.ctx, s.acct.ID)
	if err != nil {
		return err
	}
	subSet := map[string]bool{}
	for _, n := range subs {
		subSet[n] = true
	}
	byName := map[string]*storage.Mailbox{}
	names := make([]string, 0, len(boxes))
	for i := range boxes {
		byName[boxes[i].Name] = &boxes[i]
		names = append(names, boxes[i].Name)
	}
	if o.subscribedSel || lsub {
		for _, n := range subs {
			if byName[n] == nil {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	hasChild := func(n string) bool {
		k := sort.SearchStrings(names, n+sep)
		return k < len(names) && strings.HasPrefix(names[k], n+sep)
	}
	var res []*regexp.Regexp
	for _, p := range patterns {
		full := ref + p
		if strings.HasPrefix(strings.ToUpper(full), "INBOX") && (len(full) == 5 || strings.HasPrefix(full[5:], sep)) {
			full = "INBOX" + full[5:]
		}
		res = append(res, patternRE(full, sep))
	}
	match := func(n string) bool {
		for _, re := range res {
			if re.MatchString(n) {
				return true
			}
		}
		return false
	}
	// RECURSIVEMATCH: parents of subscribed mailboxes (RFC 5258 §3.5).
	childInfo := map[string]bool{}
	if o.recursive {
		for _, n := range subs {
			parts := strings.Split(n, sep)
			for i := 1; i < len(parts); i++ {
				childInfo[strings.Join(parts[:i], sep)] = true
			}
		}
	}
	for _, n := range names {
		if !match(n) {
			continue
		}
		mb := byName[n]
		subscribed := subSet[n]
		if (o.subscribedSel || lsub) && !subscribed && !(o.recursive && childInfo[n]) {
			continue
		}
		if o.specialSel && (mb == nil || roleAttr[mb.Role] == "") {
			continue
		}
		var attrs []string
		if mb == nil {
			attrs = append(attrs, `\NonExistent`)
		} else if hasChild(n) {
			attrs = append(attrs, `\HasChildren`)
		} else {
			attrs = append(attrs, `\HasNoChildren`)
		}
		if subscribed && (o.subscribedSel || o.retSubscribed) {
			attrs = append(attrs, `\Subscribed`)
		}
		if mb != nil && roleAttr[mb.Role] != "" && !lsub {
			attrs = append(attrs, roleAttr[mb.Role])
		}
		w := &s.w
		w.WriteString("* " + resp + " (" + strings.Join(attrs, " ") + ") ")
		w.str(sep)
		w.sp()
		w.mailbox(n)
		if o.recursive && childInfo[n] && !subscribed {
			w.WriteString(` ("CHILDINFO" ("SUBSCRIBED"))`)
		}
		w.WriteString("\r\n")
		if len(o.status) > 0 && mb != nil {
			if err := s.writeStatus(mb, o.status); err != nil {
				return err
			}
		}
	}
	return nil
}

func statusItems(vals []proto.Value) ([]string, error) {
	var out []string
	for _, v := range vals {
		u := strings.ToUpper(v.S)
		switch u {
		case "MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "HIGHESTMODSEQ", "RECENT", "APPENDLIMIT":
		default:
			return nil, bad("Unknown STATUS item")
		}
		if v.Kind != proto.Atom {
			return nil, bad("Bad STATUS item")
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, bad("STATUS expects items")
	}
	return out, nil
}

// cmdStatus: RFC 9051 §6.3.11, STATUS=SIZE (RFC 8438), CONDSTORE.
func cmdStatus(s *session, c *proto.Command) error {
	if len(c.Args) != 2 || c.Args[1].Kind != proto.List {
		return bad("STATUS expects a mailbox and items")
	}
	name, err := s.mailboxArg(c.Args[0])
	if err != nil {
		return err
	}
	items, err := statusItems(c.Args[1].L)
	if err != nil {
		return err
	}
	mb, err := s.srv.store.MailboxByName(s.ctx, s.acct.ID, name)
	if err != nil {
		return err
	}
	return s.writeStatus(&mb, items)
}

func (s *session) writeStatus(mb *storage.Mailbox, items []string) error {
	w := &s.w
	w.WriteString("* STATUS ")
	w.mailbox(mb.Name)
	w.WriteString(" (")
	for i, it := range items {
		if i > 0 {
			w.sp()
		}
		w.WriteString(it)
		w.sp()
		switch it {
		case "MESSAGES":
			w.num(uint64(mb.Messages))
		case "UIDNEXT":
			w.num(uint64(mb.UIDNext))
		case "UIDVALIDITY":
			w.num(uint64(mb.UIDValidity))
		case "UNSEEN":
			w.num(uint64(mb.Unseen))
		case "SIZE":
			w.num(uint64(mb.Size))
		case "HIGHESTMODSEQ":
			w.num(max(mb.HighestModSeq, 1))
		case "RECENT":
			w.num(0)
		case "APPENDLIMIT":
			w.num(uint64(s.srv.store.Config().MaxMessageSize))
		case "DELETED":
			n, err := s.countDeleted(mb.ID)
			if err != nil {
				return err
			}
			w.num(uint64(n))
		}
	}
	w.WriteString(")\r\n")
	return nil
}

func (s *session) countDeleted(mbox uint32) (int, error) {
	n := 0
	from := uint32(1)
	for {
		page, err := s.srv.store.Emails(s.ctx, s.acct.ID, mbox, from, ^uint32(0), 1000)
		if err != nil {
			return 0, err
		}
		for i := range page {
			if page[i].HasFlag(storage.FlagDeleted) {
				n++
			}
		}
		if len(page) < 1000 {
			return n, nil
		}
		from = page[len(page)-1].UID + 1
	}
}

type appendMsg struct {
	flags []string
	date  time.Time
	raw   []byte
}

// cmdAppend: APPEND (RFC 9051 §6.3.12) with MULTIAPPEND (RFC 3502),
// BINARY literal8 (RFC 3516 §4.4), UTF8 (RFC 6855 §4), APPENDUID (RFC 4315).
func cmdAppend(s *session, c *proto.Command) error {
	if len(c.Args) < 2 {
		return bad("APPEND expects a mailbox and a message")
	}
	name, err := s.mailboxArg(c.Args[0])
	if err != nil {
		return err
	}
	var msgs []appendMsg
	rest := c.Args[1:]
	for len(rest) > 0 {
		var m appendMsg
		if rest[0].Kind == proto.List {
			if m.flags, err = proto.Flags(rest[0]); err != nil {
				return bad("Bad flags")
			}
			rest = rest[1:]
		}
		if len(rest) > 0 && rest[0].Kind == proto.Quoted {
			d, ok := proto.ParseDateTime(rest[0].S)
			if !ok {
				return bad("Bad date-time")
			}
			m.date = d
			rest = rest[1:]
		}
		if len(rest) == 0 {
			return bad("Missing message literal")
		}
		switch {
		case rest[0].Kind == proto.Literal:
			m.raw = rest[0].B
		case rest[0].Kind == proto.Atom && strings.EqualFold(rest[0].S, "UTF8") && len(rest) > 1 &&
			rest[1].Kind == proto.List && len(rest[1].L) == 1 && rest[1].L[0].Kind == proto.Literal:
			if !s.w.utf8 {
				return bad("UTF8 APPEND needs ENABLE UTF8=ACCEPT")
			}
			m.raw = rest[1].L[0].B
			rest = rest[1:]
		default:
			return bad("Expected a message literal")
		}
		rest = rest[1:]
		if int64(len(m.raw)) > s.srv.store.Config().MaxMessageSize {
			return no("TOOBIG", "Message too large")
		}
		if len(m.raw) == 0 {
			return bad("Empty message")
		}
		if m.date.IsZero() {
			m.date = time.Now()
		}
		if _, err := storage.NormalizeFlags(m.flags, s.srv.store.Config().MaxFlags); err != nil {
			return bad("Invalid flag")
		}
		msgs = append(msgs, m)
	}
	mb, err := s.srv.store.MailboxByName(s.ctx, s.acct.ID, name)
	if errors.Is(err, storage.ErrNoSuchMailbox) {
		return no("TRYCREATE", "No such mailbox")
	} else if err != nil {
		return err
	}
	var uids []uint32
	var uidv uint32
	for _, m := range msgs {
		d, err := s.srv.store.Append(s.ctx, s.acct.ID, mb.ID, m.raw, m.flags, m.date)
		if err != nil {
			// MULTIAPPEND is all or nothing (RFC 3502 §3): undo.
			if len(uids) > 0 {
				if _, e := s.srv.store.StoreFlags(s.ctx, s.acct.ID, mb.ID, uids, storage.FlagsAdd, []string{storage.FlagDeleted}, storage.StoreOptions{}); e == nil {
					s.srv.store.Expunge(s.ctx, s.acct.ID, mb.ID, uids)
				}
			}
			return err
		}
		uids = append(uids, d.UID)
		uidv = d.UIDValidity
	}
	s.okCode = "APPENDUID " + itoa(int64(uidv)) + " " + numSetString(uids)
	return nil
}

// Quotas: RFC 9208; one root "" per account, STORAGE in KiB.
func cmdGetQuotaRoot(s *session, c *proto.Command) error {
	if len(c.Args) != 1 {
		return bad("GETQUOTAROOT expects a mailbox")
	}
	name, err := s.mailboxArg(c.Args[0])
	if err != nil {
		return err
	}
	mb, err := s.srv.store.MailboxByName(s.ctx, s.acct.ID, name)
	if err != nil {
		return err
	}
	s.w.WriteString("* QUOTAROOT ")
	s.w.mailbox(mb.Name)
	s.w.WriteString(` ""` + "\r\n")
	return s.writeQuota()
}

func cmdGetQuota(s *session, c *proto.Command) error {
	if len(c.Args) != 1 {
		return bad("GETQUOTA expects a root")
	}
	if r, ok := c.Args[0].AString(); !ok || r != "" {
		return no("NONEXISTENT", "No such quota root")
	}
	return s.writeQuota()
}

func (s *session) writeQuota() error {
	q, err := s.srv.store.Quota(s.ctx, s.acct.ID)
	if err != nil {
		return err
	}
	var parts []string
	if q.LimitBytes > 0 {
		parts = append(parts, "STORAGE "+itoa((q.UsedBytes+1023)/1024)+" "+itoa(q.LimitBytes/1024))
	}
	if q.LimitMessages > 0 {
		parts = append(parts, "MESSAGE "+itoa(q.UsedMessages)+" "+itoa(q.LimitMessages))
	}
	s.w.WriteString(`* QUOTA "" (` + strings.Join(parts, " ") + ")\r\n")
	return nil
}

func cmdSetQuota(s *session, c *proto.Command) error {
	return no("NOPERM", "Quotas are set by the administrator")
}
