package cassandra

// Unit tests of the commit's row writes and the intent encoding (no
// Cassandra needed).

import (
	"strings"
	"testing"
	"time"

	"github.com/stoa-mail/stoa/storage"
)

func testEngine() *Engine {
	e := &Engine{o: Options{}}
	if err := e.o.defaults(); err != nil {
		panic(err)
	}
	return e
}

func count(list []stmt, q string) (stmts, entries int) {
	for _, s := range list {
		n := 0
		for _, be := range s.entries {
			if be.Stmt == q {
				n++
			}
		}
		if n > 0 {
			stmts++
			entries += n
		}
	}
	return
}

// A trim drops whole change buckets below the point with one partition
// delete each, and cuts the bucket holding it with one range delete.
func TestTrimDropsWholeBuckets(t *testing.T) {
	ws := &storage.WriteSet{PrevVersion: 1, State: storage.AccountState{Version: 2, ModSeq: 26_000, MinChangeSeq: 25_000},
		TrimChangesBelow: 25_000}
	it := &intent{Base: storage.AccountState{Version: 1, ModSeq: 25_999, MinChangeSeq: 1}, TS: 1000, Sets: []*storage.WriteSet{ws}}
	list := testEngine().statements("a", it)
	drops, _ := count(list, qDropChanges)
	trims, _ := count(list, qTrimChanges)
	if drops != 2 || trims != 1 {
		t.Fatalf("trim below 25000 from 1: %d partition deletes (want buckets 0, 1), %d range deletes", drops, trims)
	}
	for _, s := range list {
		for _, be := range s.entries {
			if be.Stmt == qTrimChanges && (be.Args[2] != int64(2) || be.Args[3] != int64(25_000)) {
				t.Fatalf("range delete args %v", be.Args)
			}
		}
	}
}

// Rows of one partition go in one unlogged batch; a row that a later set
// of the group rewrites is written once, with the later timestamp.
func TestGroupWritesEachRowOnce(t *testing.T) {
	var sets []*storage.WriteSet
	mb := storage.Mailbox{ID: 1, Name: "INBOX", UIDNext: 1}
	for i := 0; i < 5; i++ {
		mb.UIDNext++
		mb.Messages++
		em := storage.Email{Mailbox: 1, UID: uint32(i + 1), EmailID: uint64(i + 1), BlobID: "b", InternalDate: time.Unix(0, 0)}
		sets = append(sets, &storage.WriteSet{PrevVersion: uint64(i), State: storage.AccountState{Version: uint64(i + 1), ModSeq: uint64(i + 1)},
			Mailboxes: []storage.Mailbox{mb}, Emails: []storage.Email{em},
			Changes: []storage.Change{{Seq: uint64(i + 1), Kind: storage.ChangeEmailAdd, Mailbox: 1, UIDs: []uint32{em.UID}}}})
	}
	it := &intent{TS: 100, Sets: sets}
	list := testEngine().statements("a", it)
	n, entries := count(list, qPutMailbox)
	if n != 1 || entries != 1 {
		t.Fatalf("mailbox row written %d times", entries)
	}
	for _, s := range list {
		for _, be := range s.entries {
			if be.Stmt == qPutMailbox && (be.Args[5] != int64(6) || be.Args[len(be.Args)-1] != int64(104)) {
				t.Fatalf("mailbox written with uidnext %v at %v, want the last set's", be.Args[5], be.Args[len(be.Args)-1])
			}
		}
	}
	if n, entries := count(list, qPutEmail); n != 1 || entries != 5 {
		t.Fatalf("5 emails of one bucket: %d statements, %d entries", n, entries)
	}
	if n, entries := count(list, qPutChange); n != 1 || entries != 5 {
		t.Fatalf("5 changes of one bucket: %d statements, %d entries", n, entries)
	}
}

func TestKVPlacement(t *testing.T) {
	if dd, _, b := kvPart("dlv/x/1"); !dd || b < 0 || b >= dedupeParts {
		t.Fatal("dedupe key not in dedupe table")
	}
	if _, part, _ := kvPart("th/<m@x>"); !strings.HasPrefix(part, "th/") {
		t.Fatalf("thread key in part %q", part)
	}
	if _, part, _ := kvPart("q/abc"); !strings.HasPrefix(part, "q/") {
		t.Fatalf("queue key in part %q", part)
	}
	if dd, part, _ := kvPart("sub/INBOX"); dd || part != "" {
		t.Fatalf("subscription in %v %q", dd, part)
	}
	if got := len(kvParts()); got != 1+threadParts+queueParts {
		t.Fatalf("%d kv partitions", got)
	}
}

func TestIntentRoundTrip(t *testing.T) {
	for _, n := range []int{1, 400} {
		ws := &storage.WriteSet{PrevVersion: 7, State: storage.AccountState{Version: 8}}
		for i := 0; i < n; i++ {
			ws.Emails = append(ws.Emails, storage.Email{Mailbox: 1, UID: uint32(i + 1), Flags: []string{`\Seen`},
				InternalDate: time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)})
		}
		b, err := encodeIntent(&intent{TS: 5, Sets: []*storage.WriteSet{ws}})
		if err != nil {
			t.Fatal(err)
		}
		if (n > 1) != (b[0] == 'Z') {
			t.Fatalf("%d emails encoded as %q", n, b[0])
		}
		it, err := decodeIntent(b)
		if err != nil {
			t.Fatal(err)
		}
		if it.TS != 5 || len(it.Sets[0].Emails) != n || !it.Sets[0].Emails[0].InternalDate.Equal(ws.Emails[0].InternalDate) {
			t.Fatalf("round trip: %+v", it.Sets[0].Emails[0])
		}
	}
}
