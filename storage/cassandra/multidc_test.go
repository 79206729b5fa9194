package cassandra_test

// The multi-DC test runs against a two-DC cluster (one node in dc1, one in
// dc2): `make test-multidc` starts it and sets
// STOA_TEST_MULTIDC=<dc1 host:port>,<dc2 host:port>. Without it the test
// is skipped (it is not part of `make test`).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/cassandra"
	"github.com/stoa-mail/stoa/storage/storagetest"
)

func multiDC(t *testing.T) (dc1, dc2 cassandra.Options) {
	v := os.Getenv("STOA_TEST_MULTIDC")
	if v == "" || testing.Short() {
		t.Skip("STOA_TEST_MULTIDC=<dc1 host:port>,<dc2 host:port> not set; run `make test-multidc`")
	}
	hosts := strings.Split(v, ",")
	if len(hosts) != 2 {
		t.Fatalf("STOA_TEST_MULTIDC=%q: want two addresses", v)
	}
	ks := fmt.Sprintf("stoa_mdc%d", time.Now().Unix()%1_000_000)
	base := cassandra.Options{Keyspace: ks, Replication: map[string]int{"dc1": 1, "dc2": 1},
		Timeout: 20 * time.Second, Logger: quietLogger()}
	dc1, dc2 = base, base
	dc1.Hosts, dc1.LocalDC, dc1.AutoMigrate = []string{hosts[0]}, "dc1", true
	dc2.Hosts, dc2.LocalDC = []string{hosts[1]}, "dc2"
	return dc1, dc2
}

// openEventually retries Open while the schema created in the other DC
// replicates.
func openEventually(t *testing.T, o cassandra.Options) *cassandra.Engine {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		e, err := cassandra.Open(context.Background(), o)
		if err == nil {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("open in %s: %v", o.LocalDC, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestMultiDC: concurrent deliveries to one account through both DCs
// never give a UID twice or out of commit order, before, during and after
// a move of the account's home from dc1 to dc2.
func TestMultiDC(t *testing.T) {
	o1, o2 := multiDC(t)
	o2.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e1 := openEventually(t, o1)
	defer e1.Close()
	t.Cleanup(func() { dropKeyspace(t, o1) })
	e2 := openEventually(t, o2)
	defer e2.Close()
	s1, s2 := newStore(e1), newStore(e2)

	a, err := s1.AddAccount(bg, "multi@example.test", "pw", storage.AccountOptions{})
	must(t, err)
	for { // the account record replicates to dc2
		if _, err := s2.Account(bg, a.ID); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	in, err := s1.MailboxByName(bg, a.ID, "INBOX")
	must(t, err)
	if h, err := e2.Home(bg, a.ID); err != nil || h != "dc1" {
		t.Fatalf("home seen from dc2: %q %v", h, err)
	}

	// Phase 1: 4 writers per DC. Phase 2: the same while the home moves
	// to dc2. Phase 3: again, with dc2 as home.
	var mu sync.Mutex
	var all []storage.Delivered
	var byDC [2]atomic.Int64
	deliver := func(phase string, n int, during func()) {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				s := []*storage.Store{s1, s2}[w%2]
				var last uint32
				deadline := time.Now().Add(2 * time.Minute)
				for i := 0; i < n; i++ {
					r, err := s.Append(bg, a.ID, in.ID, storagetest.Msg(fmt.Sprintf("%s w%d %d", phase, w, i)), nil, time.Time{})
					if errors.Is(err, cassandra.ErrMoving) && time.Now().Before(deadline) {
						i-- // the move holds commits for a moment: retry, as SMTP would
						continue
					}
					if err != nil {
						errs <- fmt.Errorf("%s writer %d (dc%d): %w", phase, w, w%2+1, err)
						return
					}
					if r.UID <= last {
						errs <- fmt.Errorf("%s writer %d: uid %d after %d", phase, w, r.UID, last)
						return
					}
					last = r.UID
					byDC[w%2].Add(1)
					mu.Lock()
					all = append(all, r)
					mu.Unlock()
				}
			}(w)
		}
		if during != nil {
			during()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		checkUIDs(t, append([]storage.Delivered(nil), all...))
		t.Logf("%s: %d deliveries so far (dc1 %d, dc2 %d); dc1 engine %+v; dc2 engine %+v", phase, len(all),
			byDC[0].Load(), byDC[1].Load(), e1.Stats(), e2.Stats())
	}
	deliver("home dc1", 40, nil)
	deliver("moving", 40, func() {
		time.Sleep(300 * time.Millisecond)
		t0 := time.Now()
		if err := e2.MoveHome(bg, a.ID, "dc2"); err != nil {
			t.Errorf("move home: %v", err)
		}
		t.Logf("home moved to dc2 in %v while delivering", time.Since(t0))
	})
	for _, e := range []*cassandra.Engine{e1, e2} {
		if h, err := e.Home(bg, a.ID); err != nil || h != "dc2" {
			t.Fatalf("home after move: %q %v", h, err)
		}
	}
	if acct, err := s1.Account(bg, a.ID); err != nil || acct.HomeDC != "dc2" {
		t.Fatalf("account record after move: %+v %v", acct, err)
	}
	deliver("home dc2", 40, nil)

	n := int64(len(all))
	for _, s := range []*storage.Store{s1, s2} {
		ib, err := s.Mailbox(bg, a.ID, in.ID)
		must(t, err)
		if ib.Messages != n || ib.UIDNext != uint32(n+1) {
			t.Fatalf("inbox %+v, %d delivered", ib, n)
		}
		p, err := s.Verify(bg, a.ID, false)
		must(t, err)
		if len(p) > 0 {
			t.Fatalf("verify: %v", p)
		}
	}
	uids, err := s2.AllUIDs(bg, a.ID, in.ID)
	must(t, err)
	if len(uids) != int(n) || uids[0] != 1 || uids[len(uids)-1] != uint32(n) {
		t.Fatalf("uids %d..%d (%d), want 1..%d", uids[0], uids[len(uids)-1], len(uids), n)
	}

	// With remote_home = refuse, a dc1 node does not touch a dc2 account.
	o3 := o1
	o3.AutoMigrate, o3.RemoteHome = false, "refuse"
	e3 := openEventually(t, o3)
	defer e3.Close()
	_, err = newStore(e3).Append(bg, a.ID, in.ID, storagetest.Msg("refused"), nil, time.Time{})
	var nh *cassandra.NotHomeError
	if !errors.As(err, &nh) || nh.Home != "dc2" || !errors.Is(err, storage.ErrCannot) {
		t.Fatalf("refuse policy: %v", err)
	}
}

// TestMultiDCLocalSerialRace is the control experiment: the race the home
// DC prevents. Writers in both DCs allocate "the next number" with
// LOCAL_SERIAL compare-and-set on one row, each in its own DC, as an
// engine without a home DC would. Both DCs' Paxos quorums are disjoint,
// so the same number can be won twice. The test reports what it saw; it
// does not fail when the race did not show.
func TestMultiDCLocalSerialRace(t *testing.T) {
	o1, o2 := multiDC(t)
	e1 := openEventually(t, o1)
	defer e1.Close()
	t.Cleanup(func() { dropKeyspace(t, o1) })
	e2 := openEventually(t, o2)
	defer e2.Close()
	must(t, e1.Session().Query(`INSERT INTO account_state (account, version) VALUES ('race', 0)`).Consistency(gocql.EachQuorum).Exec())
	var mu sync.Mutex
	won := map[int64]int{}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(s *gocql.Session) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				var v int64
				if err := s.Query(`SELECT version FROM account_state WHERE account = 'race'`).Scan(&v); err != nil {
					continue
				}
				ok, err := s.Query(`UPDATE account_state SET version = ? WHERE account = 'race' IF version = ?`, v+1, v).
					SerialConsistency(gocql.LocalSerial).MapScanCAS(map[string]any{})
				if err == nil && ok {
					mu.Lock()
					won[v+1]++
					mu.Unlock()
				}
			}
		}([]*gocql.Session{e1.Session(), e2.Session()}[w%2])
	}
	wg.Wait()
	dup := 0
	for _, n := range won {
		if n > 1 {
			dup++
		}
	}
	t.Logf("LOCAL_SERIAL in two DCs without a home: %d numbers allocated, %d of them twice", len(won), dup)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
