package imap

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stoa-mail/stoa/frontend/imap/proto"
	"github.com/stoa-mail/stoa/storage/mailmeta"
)

// tnode is a thread container (RFC 5256 §2.2); num 0 is a dummy.
type tnode struct {
	num      uint32
	date     time.Time
	subject  string // base subject
	reply    bool
	parent   *tnode
	children []*tnode
}

func (n *tnode) isAncestorOf(x *tnode) bool {
	for p := x; p != nil; p = p.parent {
		if p == n {
			return true
		}
	}
	return false
}

func (n *tnode) addChild(c *tnode) {
	if c.parent != nil {
		p := c.parent
		for i, x := range p.children {
			if x == c {
				p.children = append(p.children[:i], p.children[i+1:]...)
				break
			}
		}
	}
	c.parent = n
	n.children = append(n.children, c)
}

// firstDate is the date used to sort a container: its own, or its first
// child's for a dummy.
func (n *tnode) firstDate() time.Time {
	if n.num != 0 || len(n.children) == 0 {
		return n.date
	}
	return n.children[0].firstDate()
}

func sortNodes(ns []*tnode) {
	for _, n := range ns {
		sortNodes(n.children)
	}
	sort.SliceStable(ns, func(a, b int) bool {
		da, db := ns[a].firstDate(), ns[b].firstDate()
		if !da.Equal(db) {
			return da.Before(db)
		}
		return ns[a].num < ns[b].num
	})
}

type threadMsg struct {
	num     uint32
	date    time.Time
	msgID   string
	refs    []string
	subject string
	reply   bool
}

// cmdThread: THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §2).
func cmdThread(s *session, c *proto.Command) error {
	if len(c.Args) < 3 || c.Args[0].Kind != proto.Atom {
		return bad("THREAD expects an algorithm, a charset and keys")
	}
	alg := strings.ToUpper(c.Args[0].S)
	if alg != "ORDEREDSUBJECT" && alg != "REFERENCES" {
		return bad("Unknown threading algorithm")
	}
	cs, _ := c.Args[1].AString()
	if err := checkCharset(strings.ToUpper(cs)); err != nil {
		return err
	}
	k, err := proto.ParseSearchKeys(c.Args[2:])
	if err != nil {
		return searchErr(err)
	}
	var msgs []threadMsg
	err = s.searchEach(k, false, func(m *msg) error {
		meta := m.getMeta()
		tm := threadMsg{num: m.seq, date: sentDate(m), msgID: meta.MessageID,
			subject: strings.ToLower(meta.BaseSubject), reply: isReply(meta)}
		if c.UID {
			tm.num = m.e.UID
		}
		tm.refs = meta.References
		if len(tm.refs) == 0 && len(meta.InReplyTo) > 0 {
			tm.refs = meta.InReplyTo[:1]
		}
		msgs = append(msgs, tm)
		return nil
	})
	if err != nil {
		return err
	}
	var roots []*tnode
	if alg == "ORDEREDSUBJECT" {
		roots = orderedSubject(msgs)
	} else {
		roots = references(msgs)
	}
	s.w.WriteString("* THREAD ")
	for _, r := range roots {
		s.w.WriteString("(" + formatThread(r) + ")")
	}
	s.w.WriteString("\r\n")
	return nil
}

func isReply(m *mailmeta.Meta) bool {
	l := strings.ToLower(strings.TrimSpace(m.Subject))
	return strings.HasPrefix(l, "re:") || strings.HasPrefix(l, "fwd:") || strings.HasPrefix(l, "fw:") || strings.Contains(l, "[fwd:")
}

// orderedSubject groups by base subject, sorted by date; later messages
// are children of the first (RFC 5256 §2.1).
func orderedSubject(msgs []threadMsg) []*tnode {
	sort.SliceStable(msgs, func(a, b int) bool {
		if msgs[a].subject != msgs[b].subject {
			return msgs[a].subject < msgs[b].subject
		}
		if !msgs[a].date.Equal(msgs[b].date) {
			return msgs[a].date.Before(msgs[b].date)
		}
		return msgs[a].num < msgs[b].num
	})
	var roots []*tnode
	var cur *tnode
	for i, m := range msgs {
		n := &tnode{num: m.num, date: m.date}
		if i > 0 && m.subject == msgs[i-1].subject {
			cur.addChild(n)
			continue
		}
		cur = n
		roots = append(roots, n)
	}
	for _, r := range roots {
		sortNodes(r.children)
	}
	sort.SliceStable(roots, func(a, b int) bool {
		if !roots[a].date.Equal(roots[b].date) {
			return roots[a].date.Before(roots[b].date)
		}
		return roots[a].num < roots[b].num
	})
	return roots
}

// references links messages by Message-ID, References and In-Reply-To,
// prunes empty containers and groups roots by subject (RFC 5256 §2.2).
func references(msgs []threadMsg) []*tnode {
	byID := map[string]*tnode{}
	var all []*tnode
	get := func(id string) *tnode {
		if n := byID[id]; n != nil {
			return n
		}
		n := &tnode{}
		byID[id] = n
		all = append(all, n)
		return n
	}
	for i, m := range msgs {
		id := m.msgID
		if id == "" || (byID[id] != nil && byID[id].num != 0) {
			id = "\x00" + strconv.Itoa(i) // missing or duplicate Message-ID
		}
		n := get(id)
		n.num, n.date, n.subject, n.reply = m.num, m.date, m.subject, m.reply
		var prev *tnode
		for _, r := range m.refs {
			rn := get(r)
			if prev != nil && rn.parent == nil && !rn.isAncestorOf(prev) {
				prev.addChild(rn)
			}
			prev = rn
		}
		if prev != nil && prev != n && !n.isAncestorOf(prev) {
			prev.addChild(n)
		}
	}
	var roots []*tnode
	for _, n := range all {
		if n.parent == nil {
			roots = append(roots, n)
		}
	}
	roots = prune(roots, true)
	sortNodes(roots)
	// Group roots that share a base subject (§2.2 step 5, simplified).
	bySubj := map[string]*tnode{}
	var out []*tnode
	for _, r := range roots {
		subj := r.subject
		if r.num == 0 && len(r.children) > 0 {
			subj = r.children[0].subject
		}
		if subj == "" {
			out = append(out, r)
			continue
		}
		first := bySubj[subj]
		switch {
		case first == nil:
			bySubj[subj] = r
			out = append(out, r)
		case first.num != 0 && !first.reply && r.num != 0 && r.reply:
			first.addChild(r)
		case first.num == 0:
			first.addChild(r)
		default:
			d := &tnode{}
			for i, x := range out {
				if x == first {
					out[i] = d
				}
			}
			d.addChild(first)
			d.addChild(r)
			bySubj[subj] = d
		}
	}
	sortNodes(out)
	return out
}

// prune removes dummies without children and promotes the children of
// dummies, except a root dummy with several children (RFC 5256 §2.2 step 4).
func prune(ns []*tnode, root bool) []*tnode {
	var out []*tnode
	for _, n := range ns {
		n.children = prune(n.children, false)
		for _, c := range n.children {
			c.parent = n
		}
		if n.num != 0 {
			out = append(out, n)
			continue
		}
		if len(n.children) == 0 {
			continue
		}
		if root && len(n.children) > 1 {
			out = append(out, n)
			continue
		}
		for _, c := range n.children {
			c.parent = n.parent
			out = append(out, c)
		}
	}
	if root {
		for _, n := range out {
			n.parent = nil
		}
	}
	return out
}

// formatThread renders one thread (RFC 5256 §4): "a b" for a chain,
// "a (b)(c)" for siblings.
func formatThread(n *tnode) string {
	var parts []string
	cur := n
	for {
		if cur.num != 0 {
			parts = append(parts, strconv.FormatUint(uint64(cur.num), 10))
		}
		if len(cur.children) != 1 {
			break
		}
		cur = cur.children[0]
	}
	out := strings.Join(parts, " ")
	if len(cur.children) > 1 {
		if out != "" {
			out += " "
		}
		for _, c := range cur.children {
			out += "(" + formatThread(c) + ")"
		}
	}
	return out
}
