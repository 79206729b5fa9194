package cassandra_test

// Engine-specific tests against a real Cassandra (the contract itself is
// in engine_test.go).

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/cassandra"
	"github.com/stoa-mail/stoa/storage/failpoint"
	"github.com/stoa-mail/stoa/storage/storagetest"
)

var bg = context.Background()

func newStore(e storage.Engine) *storage.Store {
	return storage.New(e, storage.Config{PasswordCost: storage.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestSchema: Open refuses an unmigrated keyspace with a clear message,
// Migrate records its versions and is idempotent, and the tables are
// typed (an operator reads them with cqlsh).
func TestSchema(t *testing.T) {
	o := testOptions(t)
	o.AutoMigrate = false
	if _, err := cassandra.Open(bg, o); !errors.Is(err, cassandra.ErrSchema) || !strings.Contains(err.Error(), "stoa migrate") {
		t.Fatalf("open without schema: %v", err)
	}
	t.Cleanup(func() { dropKeyspace(t, o) })
	done, err := cassandra.Migrate(bg, o)
	must(t, err)
	if len(done) != cassandra.SchemaVersion() {
		t.Fatalf("first migrate applied %v", done)
	}
	done, err = cassandra.Migrate(bg, o)
	must(t, err)
	if len(done) != 0 {
		t.Fatalf("second migrate applied %v", done)
	}
	e, err := cassandra.Open(bg, o)
	must(t, err)
	defer e.Close()
	var n int
	must(t, e.Session().Query(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
	if n != cassandra.SchemaVersion() {
		t.Fatalf("schema_migrations has %d rows", n)
	}
	var strategy map[string]string
	must(t, e.Session().Query(`SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?`, o.Keyspace).Scan(&strategy))
	if !strings.HasSuffix(strategy["class"], "NetworkTopologyStrategy") || strategy[o.LocalDC] != "1" {
		t.Fatalf("replication %v", strategy)
	}
	want := map[string]string{
		"emails.flags":             "frozen<set<text>>",
		"emails.uid":               "bigint",
		"emails.internal_date":     "timestamp",
		"account_state.version":    "bigint",
		"account_state.used_bytes": "bigint",
		"mailboxes.unseen":         "bigint",
		"changes.uids":             "frozen<list<bigint>>",
		"blob_chunks.data":         "blob",
		"accounts.aliases":         "frozen<list<text>>",
	}
	it := e.Session().Query(`SELECT table_name, column_name, type FROM system_schema.columns WHERE keyspace_name = ?`, o.Keyspace).Iter()
	var table, col, typ string
	got := map[string]string{}
	for it.Scan(&table, &col, &typ) {
		got[table+"."+col] = typ
		if typ == "counter" {
			t.Errorf("counter column %s.%s (DESIGN §2.2)", table, col)
		}
	}
	must(t, it.Close())
	for k, v := range want {
		if got[k] != v {
			t.Errorf("column %s is %q, want %q", k, got[k], v)
		}
	}
}

func newAccount(t testing.TB, s *storage.Store, login string) (storage.Account, storage.Mailbox) {
	t.Helper()
	a, err := s.AddAccount(bg, login, "pw", storage.AccountOptions{})
	must(t, err)
	in, err := s.MailboxByName(bg, a.ID, "INBOX")
	must(t, err)
	return a, in
}

// TestOneLWTPerMutation: a delivery costs one LWT per account, whatever
// the number of its mailboxes, and nothing else takes one.
func TestOneLWTPerMutation(t *testing.T) {
	e := openTest(t)
	s := newStore(e)
	a, in := newAccount(t, s, "lwt1@example.test")
	b, _ := newAccount(t, s, "lwt2@example.test")
	before := e.Stats()
	for i := 0; i < 5; i++ {
		_, err := s.Append(bg, a.ID, in.ID, storagetest.Msg("one"), nil, time.Time{})
		must(t, err)
	}
	if d := e.Stats().CommitLWTs - before.CommitLWTs; d != 5 {
		t.Fatalf("5 appends took %d LWTs", d)
	}
	before = e.Stats()
	res, err := s.Deliver(bg, storage.Delivery{ID: "multi", Raw: storagetest.Msg("multi"), Targets: []storage.Target{
		{Account: a.ID}, {Account: a.ID, Role: storage.RoleJunk}, {Account: b.ID}}})
	must(t, err)
	for _, r := range res {
		must(t, r.Err)
	}
	if d := e.Stats().CommitLWTs - before.CommitLWTs; d != 2 {
		t.Fatalf("3 targets in 2 accounts took %d LWTs", d)
	}
	// Reads take none.
	before = e.Stats()
	_, err = s.Emails(bg, a.ID, in.ID, 1, ^uint32(0), 0)
	must(t, err)
	_, err = s.Changes(bg, a.ID, 0, 0)
	must(t, err)
	if d := e.Stats().LWTs - before.LWTs; d != 0 {
		t.Fatalf("reads took %d LWTs", d)
	}
	// A no-op mutation commits nothing.
	before = e.Stats()
	_, err = s.StoreFlags(bg, a.ID, in.ID, []uint32{1}, storage.FlagsRemove, []string{storage.FlagFlagged}, storage.StoreOptions{})
	must(t, err)
	if d := e.Stats().CommitLWTs - before.CommitLWTs; d != 0 {
		t.Fatalf("no-op store took %d LWTs", d)
	}
}

// TestRollForwardAcrossProcesses: a process dies right after its LWT; a
// reader in another process completes the commit (roll forward) and sees
// the message whole; writers continue after it.
func TestRollForwardAcrossProcesses(t *testing.T) {
	e1 := openTest(t)
	s1 := newStore(e1)
	a, in := newAccount(t, s1, "rf@example.test")
	_, err := s1.Append(bg, a.ID, in.ID, storagetest.Msg("first"), nil, time.Time{})
	must(t, err)
	failpoint.Enable(cassandra.FPAfterLWT, failpoint.Error)
	_, err = s1.Append(bg, a.ID, in.ID, storagetest.Msg("interrupted"), []string{storage.FlagSeen}, time.Time{})
	failpoint.Reset()
	if !errors.Is(err, failpoint.ErrInjected) {
		t.Fatalf("failpoint: %v", err)
	}
	// Another process.
	o := e1.o
	e2, err := cassandra.Open(bg, o)
	must(t, err)
	defer e2.Close()
	s2 := newStore(e2)
	st, err := s2.State(bg, a.ID)
	must(t, err)
	if st.UsedMessages != 2 {
		t.Fatalf("state after the LWT: %+v", st)
	}
	es, err := s2.Emails(bg, a.ID, in.ID, 1, ^uint32(0), 0)
	must(t, err)
	if len(es) != 2 || es[1].UID != 2 || !es[1].HasFlag(storage.FlagSeen) {
		t.Fatalf("emails after roll forward: %+v", es)
	}
	if e2.Stats().RollForwards != 1 {
		t.Fatalf("roll forwards: %+v", e2.Stats())
	}
	ib, err := s2.Mailbox(bg, a.ID, in.ID)
	must(t, err)
	if ib.Messages != 2 || ib.Unseen != 1 || ib.UIDNext != 3 {
		t.Fatalf("inbox %+v", ib)
	}
	r, err := s2.Append(bg, a.ID, in.ID, storagetest.Msg("after"), nil, time.Time{})
	must(t, err)
	if r.UID != 3 {
		t.Fatalf("next uid %d", r.UID)
	}
	p, err := s2.Verify(bg, a.ID, false)
	must(t, err)
	if len(p) > 0 {
		t.Fatalf("verify: %v", p)
	}
}

// TestLWTTimeoutRecovery: an LWT that timed out but did commit is
// recognised (serial read of the intent id): the mutation is applied
// once and acknowledged.
func TestLWTTimeoutRecovery(t *testing.T) {
	e := openTest(t)
	s := newStore(e)
	a, in := newAccount(t, s, "to@example.test")
	failpoint.Enable(cassandra.FPLWTTimeout, failpoint.Error)
	r, err := s.Append(bg, a.ID, in.ID, storagetest.Msg("timeout"), nil, time.Time{})
	failpoint.Reset()
	must(t, err)
	if r.UID != 1 {
		t.Fatalf("uid %d", r.UID)
	}
	es, err := s.Emails(bg, a.ID, in.ID, 1, ^uint32(0), 0)
	must(t, err)
	if len(es) != 1 {
		t.Fatalf("%d emails", len(es))
	}
}

// TestTwoProcessesOneMailbox: two engines (two server processes) deliver
// into one mailbox at once. The state row's LWT serialises them: no UID is
// given twice, each writer sees its UIDs ascend, counts are exact.
func TestTwoProcessesOneMailbox(t *testing.T) {
	e1 := openTest(t)
	e2, err := cassandra.Open(bg, e1.o)
	must(t, err)
	defer e2.Close()
	stores := []*storage.Store{newStore(e1), newStore(e2)}
	a, in := newAccount(t, stores[0], "two@example.test")
	const writers, per = 8, 25
	var mu sync.Mutex
	var all []storage.Delivered
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s := stores[w%2]
			var last uint32
			for i := 0; i < per; i++ {
				r, err := s.Append(bg, a.ID, in.ID, storagetest.Msg(fmt.Sprintf("p%d-%d", w, i)), nil, time.Time{})
				if err != nil {
					errs <- err
					return
				}
				if r.UID <= last {
					errs <- fmt.Errorf("writer %d: uid %d after %d", w, r.UID, last)
					return
				}
				last = r.UID
				mu.Lock()
				all = append(all, r)
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkUIDs(t, all)
	ib, err := stores[1].Mailbox(bg, a.ID, in.ID)
	must(t, err)
	if ib.Messages != writers*per || ib.UIDNext != writers*per+1 {
		t.Fatalf("inbox %+v", ib)
	}
	p, err := stores[1].Verify(bg, a.ID, false)
	must(t, err)
	if len(p) > 0 {
		t.Fatalf("verify: %v", p)
	}
	t.Logf("engine 1 %+v", e1.Stats())
	t.Logf("engine 2 %+v", e2.Stats())
}

// checkUIDs: no UID or MODSEQ twice, and MODSEQ order is UID order.
func checkUIDs(t testing.TB, all []storage.Delivered) {
	t.Helper()
	uids, mss := map[uint32]bool{}, map[uint64]bool{}
	for _, r := range all {
		if uids[r.UID] || mss[r.ModSeq] {
			t.Fatalf("uid %d / modseq %d given twice", r.UID, r.ModSeq)
		}
		uids[r.UID], mss[r.ModSeq] = true, true
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ModSeq < all[j].ModSeq })
	for i := 1; i < len(all); i++ {
		if all[i].UID <= all[i-1].UID {
			t.Fatalf("uid %d (modseq %d) after uid %d (modseq %d)", all[i].UID, all[i].ModSeq, all[i-1].UID, all[i-1].ModSeq)
		}
	}
}

// TestRepairFixesDrift: counts broken behind the engine's back (as a bug
// or a manual edit would) are found and fixed by Store.Verify, which is
// what `stoa repair` runs.
func TestRepairFixesDrift(t *testing.T) {
	e := openTest(t)
	s := newStore(e)
	a, in := newAccount(t, s, "rep@example.test")
	for i := 0; i < 3; i++ {
		_, err := s.Append(bg, a.ID, in.ID, storagetest.Msg("r"), nil, time.Time{})
		must(t, err)
	}
	must(t, e.Session().Query(`UPDATE mailboxes SET messages = 99, unseen = 0 WHERE account = ? AND id = ?`, a.ID, int64(in.ID)).Exec())
	e2, err := cassandra.Open(bg, e.o) // a fresh process: nothing cached
	must(t, err)
	defer e2.Close()
	s2 := newStore(e2)
	p, err := s2.Verify(bg, a.ID, false)
	must(t, err)
	if len(p) != 2 {
		t.Fatalf("verify found %v", p)
	}
	_, err = s2.Verify(bg, a.ID, true)
	must(t, err)
	p, err = s2.Verify(bg, a.ID, false)
	must(t, err)
	if len(p) != 0 {
		t.Fatalf("after repair: %v", p)
	}
	ib, err := s2.Mailbox(bg, a.ID, in.ID)
	must(t, err)
	if ib.Messages != 3 || ib.Unseen != 3 {
		t.Fatalf("inbox %+v", ib)
	}
}

// TestDedupeRecordsExpire: delivery dedupe records carry the TTL.
func TestDedupeRecordsExpire(t *testing.T) {
	e := openTest(t)
	s := newStore(e)
	a, _ := newAccount(t, s, "dd@example.test")
	res, err := s.Deliver(bg, storage.Delivery{ID: "smtp-ttl", Raw: storagetest.Msg("ttl"), Targets: []storage.Target{{Account: a.ID}}})
	must(t, err)
	must(t, res[0].Err)
	it := e.Session().Query(`SELECT key, TTL(value) FROM dedupe WHERE account = ? AND bucket IN (0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15)`, a.ID).Iter()
	var key string
	var ttl int
	n := 0
	for it.Scan(&key, &ttl) {
		n++
		if !strings.HasPrefix(key, "dlv/smtp-ttl/") || ttl <= 0 || ttl > 30*24*3600 {
			t.Errorf("dedupe %s ttl %d", key, ttl)
		}
	}
	must(t, it.Close())
	if n != 1 {
		t.Fatalf("%d dedupe rows", n)
	}
}

// TestLargeBlobChunks: a blob above the inline limit is chunked in
// partitions of bounded size and reads back; PutBlob of it again only
// refreshes its time.
func TestLargeBlobChunks(t *testing.T) {
	e := openTest(t)
	data := []byte(strings.Repeat("0123456789abcdef", 5<<20/16+123)) // 5 MiB + a bit
	id := storage.BlobID(data)
	must(t, e.PutBlob(bg, id, data, []byte(`{"size":1}`)))
	got, err := e.GetBlob(bg, id)
	must(t, err)
	if string(got) != string(data) {
		t.Fatal("blob differs")
	}
	var groups int
	must(t, e.Session().Query(`SELECT COUNT(*) FROM blob_chunks WHERE blob = ? AND grp = 1 ALLOW FILTERING`, id).Scan(&groups))
	if groups == 0 {
		t.Fatal("5 MiB blob in one chunk partition")
	}
	var t1, t2 time.Time
	must(t, e.Session().Query(`SELECT last_put FROM blobs WHERE blob = ?`, id).Scan(&t1))
	time.Sleep(5 * time.Millisecond)
	must(t, e.PutBlob(bg, id, data, []byte(`{"size":1}`)))
	must(t, e.Session().Query(`SELECT last_put FROM blobs WHERE blob = ?`, id).Scan(&t2))
	if !t2.After(t1) {
		t.Fatalf("last_put not refreshed: %v %v", t1, t2)
	}
	if ok, err := e.DeleteBlob(bg, id, time.Now().Add(time.Hour)); !ok || err != nil {
		t.Fatalf("DeleteBlob: %v %v", ok, err)
	}
	if _, err := e.GetBlob(bg, id); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted blob: %v", err)
	}
}

// TestLargeWriteSetIntent: a mutation whose intent is too large for the
// state row (a STORE on thousands of messages) keeps it in the intents
// table, survives a crash after its LWT, and leaves no intent behind.
func TestLargeWriteSetIntent(t *testing.T) {
	e := openTest(t)
	s := newStore(e)
	a, in := newAccount(t, s, "big-intent@example.test")
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 150; i++ {
				if _, err := s.Append(bg, a.ID, in.ID, storagetest.Msg("bulk"), nil, time.Time{}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	uids, err := s.AllUIDs(bg, a.ID, in.ID)
	must(t, err)
	failpoint.Enable(cassandra.FPAfterLWT, failpoint.Error)
	_, err = s.StoreFlags(bg, a.ID, in.ID, uids, storage.FlagsAdd, []string{storage.FlagSeen, "$Important"}, storage.StoreOptions{})
	failpoint.Reset()
	if !errors.Is(err, failpoint.ErrInjected) {
		t.Fatalf("failpoint: %v", err)
	}
	var chunks int
	must(t, e.Session().Query(`SELECT intent_chunks FROM account_state WHERE account = ?`, a.ID).Scan(&chunks))
	if chunks == 0 {
		t.Fatal("large intent stored inline")
	}
	e2, err := cassandra.Open(bg, e.o)
	must(t, err)
	defer e2.Close()
	s2 := newStore(e2)
	ib, err := s2.Mailbox(bg, a.ID, in.ID)
	must(t, err)
	if ib.Unseen != 0 || ib.Messages != int64(len(uids)) {
		t.Fatalf("inbox after roll forward %+v", ib)
	}
	es, err := s2.Emails(bg, a.ID, in.ID, 1, ^uint32(0), 0)
	must(t, err)
	for _, em := range es {
		if !em.HasFlag(storage.FlagSeen) || !em.HasFlag("$Important") {
			t.Fatalf("email %d flags %v", em.UID, em.Flags)
		}
	}
	p, err := s2.Verify(bg, a.ID, false)
	must(t, err)
	if len(p) > 0 {
		t.Fatal(p)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left int
		must(t, e2.Session().Query(`SELECT COUNT(*) FROM intents`).Scan(&left))
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d intent chunks left", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDropAccountData: deleting an account removes its rows and its blob
// references, so its blobs can be collected.
func TestDropAccountData(t *testing.T) {
	e := openTest(t)
	s := newStore(e)
	a, in := newAccount(t, s, "gone@example.test")
	raw := storagetest.Msg("gone")
	_, err := s.Append(bg, a.ID, in.ID, raw, nil, time.Time{})
	must(t, err)
	must(t, s.DeleteAccount(bg, a.ID))
	for _, q := range []string{
		`SELECT COUNT(*) FROM mailboxes WHERE account = ?`,
		`SELECT COUNT(*) FROM account_state WHERE account = ?`,
		`SELECT COUNT(*) FROM account_kv WHERE account = ? AND part = '' `,
	} {
		var n int
		must(t, e.Session().Query(q, a.ID).Scan(&n))
		if n != 0 {
			t.Errorf("%s: %d rows", q, n)
		}
	}
	ref, err := e.BlobReferenced(bg, storage.BlobID(raw))
	must(t, err)
	if ref {
		t.Fatal("blob still referenced")
	}
	n, err := s.CollectGarbage(bg, -time.Hour)
	must(t, err)
	if n != 1 {
		t.Fatalf("gc collected %d", n)
	}
}
