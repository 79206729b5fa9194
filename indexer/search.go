package indexer

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/mailmeta"
)

// Searcher answers searches from a Backend plus the changes it has not
// applied yet, so mail delivered a moment ago is found (DESIGN §3).
type Searcher struct {
	Store   *storage.Store
	Backend Backend
	// MaxPending bounds the unindexed messages matched in process
	// (default 2000); beyond it Search returns ErrIndexBehind.
	MaxPending int

	pending matcherCache
}

// matcherCache keeps the analysed text of messages the index has not
// reached, by blob (text never changes), so that a SEARCH with several text
// keys, or searches repeated while the index catches up, read and analyse
// each message once. Bounded by memory: entries go after matcherCacheTTL
// (the index has reached them by then); when it is full, new entries are
// not kept, so that a search over more than fits still finds the first
// part cached instead of each pass evicting what the next one needs.
type matcherCache struct {
	mu    sync.Mutex
	m     map[string]*Matcher
	order []cached // oldest first
	bytes int
}

type cached struct {
	blob string
	at   time.Time
	size int
}

const (
	matcherCacheBytes = 64 << 20
	matcherCacheTTL   = time.Minute
	// maxPendingText bounds the text (text/* parts) of the unindexed
	// messages one Search analyses: analysed, about 7 times as much, it
	// fits the cache.
	maxPendingText = 8 << 20
)

// textSize is the size of the text/* parts under p (attachments of other
// types are not analysed), at most what is indexed of a message.
func textSize(p *mailmeta.Part) int64 {
	var n int64
	var walk func(p *mailmeta.Part)
	walk = func(p *mailmeta.Part) {
		if p == nil {
			return
		}
		if strings.EqualFold(p.Type, "text") {
			n += p.Size
		}
		for _, c := range p.Children {
			walk(c)
		}
		walk(p.Message)
	}
	walk(p)
	return min(n, 2*TextLimit)
}

func (c *matcherCache) get(blob string) *Matcher {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(time.Now())
	return c.m[blob]
}

// expire drops the entries older than matcherCacheTTL.
func (c *matcherCache) expire(now time.Time) {
	for len(c.order) > 0 && now.Sub(c.order[0].at) > matcherCacheTTL {
		delete(c.m, c.order[0].blob)
		c.bytes -= c.order[0].size
		c.order = c.order[1:]
	}
}

func (c *matcherCache) put(blob string, m *Matcher) {
	n := m.size()
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*Matcher{}
	}
	c.expire(now)
	if _, ok := c.m[blob]; ok || c.bytes+n > matcherCacheBytes {
		return
	}
	c.m[blob] = m
	c.order = append(c.order, cached{blob, now, n})
	c.bytes += n
}

// ErrIndexBehind means the index lags too far to answer quickly: the
// caller scans the mailbox itself (IMAP: Searcher ok=false).
var ErrIndexBehind = errors.New("indexer: index too far behind; scan instead")

// Search returns, in ascending order, the UIDs of the messages in mailbox
// of account that match q (IMAP SEARCH text keys, RFC 9051 §6.4.4, with
// the word semantics of ADR 0008). The account and mailbox are filters the
// server adds to every query; nothing in q can widen them. Messages the
// indexer has not reached yet are matched in process.
func (s *Searcher) Search(ctx context.Context, account string, mailbox uint32, q Query) ([]uint32, error) {
	uids, cp, err := s.Backend.Search(ctx, account, mailbox, q)
	if err != nil {
		return nil, err
	}
	// Changes after the checkpoint: UIDs added since (to match here) and
	// UIDs expunged since (to drop from the index's answer).
	added := map[uint32]bool{}
	removed := map[uint32]bool{}
	cleared := false
	since := cp
	for {
		cs, err := s.Store.Changes(ctx, account, since, 1000)
		if errors.Is(err, storage.ErrChangesTruncated) {
			return nil, ErrIndexBehind
		}
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if c.Mailbox != mailbox {
				continue
			}
			switch c.Kind {
			case storage.ChangeEmailAdd:
				for _, u := range c.UIDs {
					added[u] = true
				}
			case storage.ChangeEmailExpunge:
				for _, u := range c.UIDs {
					removed[u] = true
					delete(added, u)
				}
			case storage.ChangeMailboxDelete:
				cleared = true
				clear(added)
			}
		}
		if len(cs) < 1000 {
			break
		}
		since = cs[len(cs)-1].Seq
		// Records of one Seq may straddle pages; re-reading from the
		// last Seq is harmless since applying them twice is idempotent.
		since--
		if since < cp {
			since = cp
		}
		if cs[0].Seq == cs[len(cs)-1].Seq { // one huge Seq: move on
			since = cs[0].Seq
		}
	}
	maxp := s.MaxPending
	if maxp <= 0 {
		maxp = 2000
	}
	if len(added) > maxp {
		return nil, ErrIndexBehind
	}
	if cleared {
		uids = nil
	}
	if len(removed) > 0 {
		uids = slices.DeleteFunc(uids, func(u uint32) bool { return removed[u] })
	}
	if !slices.IsSorted(uids) { // the Backend contract says sorted; be sure
		slices.Sort(uids)
	}
	if len(added) == 0 {
		return uids, nil
	}
	var pending []storage.Email
	size := int64(0)
	for u := range added {
		if _, found := slices.BinarySearch(uids, u); found {
			continue
		}
		es, err := s.Store.Emails(ctx, account, mailbox, u, u, 1)
		if err != nil {
			return nil, err
		}
		if len(es) == 0 {
			continue
		}
		if s.pending.get(es[0].BlobID) == nil {
			meta, err := s.Store.Meta(ctx, es[0].BlobID)
			if err != nil {
				return nil, err
			}
			size += textSize(meta.Body)
		}
		pending = append(pending, es[0])
	}
	if size > maxPendingText {
		// More text to analyse here than the cache keeps: each text key
		// would analyse it again. The caller's scan analyses each
		// message once for all keys.
		return nil, ErrIndexBehind
	}
	ld := Loader{Store: s.Store}
	var extra []uint32
	for _, e := range pending {
		m := s.pending.get(e.BlobID)
		if m == nil {
			d, err := ld.Doc(ctx, account, e)
			if err != nil {
				return nil, err
			}
			m = NewMatcher(d).Freeze()
			s.pending.put(e.BlobID, m)
		}
		if m.Match(q) {
			extra = append(extra, e.UID)
		}
	}
	if len(extra) > 0 {
		uids = append(uids, extra...)
		slices.Sort(uids)
	}
	return uids, nil
}
