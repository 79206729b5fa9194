package cassandra_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/stoa-mail/stoa/integration/testenv"
	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/cassandra"
	"github.com/stoa-mail/stoa/storage/storagetest"
)

// opened remembers the keyspace of an engine so that Reopen can open it again.
type opened struct {
	*cassandra.Engine
	o cassandra.Options
}

var ksSeq atomic.Int64

// testOptions returns options for a new, unique keyspace on the test node.
func testOptions(t testing.TB) cassandra.Options {
	addr := testenv.Cassandra(t)
	ks := fmt.Sprintf("stoa_t%d_%d_%d", time.Now().Unix()%1_000_000, os.Getpid()%100_000, ksSeq.Add(1))
	return cassandra.Options{
		Hosts:       strings.Split(addr, ","),
		Keyspace:    ks,
		LocalDC:     envOr("STOA_TEST_CASSANDRA_DC", "dc1"),
		Replication: map[string]int{envOr("STOA_TEST_CASSANDRA_DC", "dc1"): 1},
		Timeout:     20 * time.Second,
		AutoMigrate: true,
		Logger:      quietLogger(),
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

var (
	adminMu sync.Mutex
	admins  = map[string]*gocql.Session{} // by contact host
)

// dropKeyspace removes a test keyspace (best effort).
func dropKeyspace(t testing.TB, o cassandra.Options) {
	adminMu.Lock()
	defer adminMu.Unlock()
	s, ok := admins[o.Hosts[0]]
	if !ok {
		cl := gocql.NewCluster(o.Hosts...)
		cl.Timeout = 60 * time.Second
		var err error
		if s, err = cl.CreateSession(); err != nil {
			t.Logf("drop keyspace %s: %v", o.Keyspace, err)
			return
		}
		admins[o.Hosts[0]] = s
	}
	if err := s.Query("DROP KEYSPACE IF EXISTS " + o.Keyspace).Exec(); err != nil {
		t.Logf("drop keyspace %s: %v", o.Keyspace, err)
	}
}

// openTest opens an engine on a fresh keyspace that is dropped after the test.
func openTest(t testing.TB) opened {
	t.Helper()
	o := testOptions(t)
	t0 := time.Now()
	e, err := cassandra.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	keyspaceTime.Add(int64(time.Since(t0)))
	keyspaces.Add(1)
	t.Cleanup(func() { dropKeyspace(t, o) })
	if os.Getenv("STOA_TEST_PROGRESS") != "" {
		progress(t, e)
	}
	o.AutoMigrate = false
	return opened{e, o}
}

var keyspaceTime, keyspaces atomic.Int64

// progress logs the engine's counters every 10 s (STOA_TEST_PROGRESS=1).
func progress(t testing.TB, e *cassandra.Engine) {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		start, last := time.Now(), e.Stats()
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				st := e.Stats()
				fmt.Fprintf(os.Stderr, "%6.0fs %s: %d mutations (+%.0f/s), %d LWTs, %d conflicts, %d roll-forwards\n",
					time.Since(start).Seconds(), t.Name(), st.Mutations, float64(st.Mutations-last.Mutations)/10,
					st.CommitLWTs, st.Conflicts, st.RollForwards)
				last = st
			}
		}
	}()
}

func harness() storagetest.Harness {
	return storagetest.Harness{
		Open: func(t testing.TB) storage.Engine { return openTest(t) },
		Reopen: func(t testing.TB, e storage.Engine) storage.Engine {
			o := e.(opened)
			o.Close()
			n, err := cassandra.Open(context.Background(), o.o)
			if err != nil {
				t.Fatal(err)
			}
			return opened{n, o.o}
		},
		Failpoints: []string{cassandra.FPBeforeLWT, cassandra.FPAfterLWT, cassandra.FPMidApply,
			cassandra.FPBeforeMark, cassandra.FPAfterCommit},
		Scale: scale(),
	}
}

// scale is the size of the large-mailbox test. 100,000 passes (8m43s on
// a shared 2-core test machine: ~200 deliveries/s into one mailbox, 3.5
// per LWT), over the ~4 min budget of `make test`; 30,000 still spans
// three email buckets. STOA_TEST_CASSANDRA_SCALE=100000 runs the full size.
func scale() int {
	if v := os.Getenv("STOA_TEST_CASSANDRA_SCALE"); v != "" {
		var n int
		fmt.Sscan(v, &n)
		return n
	}
	return 30_000
}

func TestContract(t *testing.T) {
	storagetest.Run(t, harness())
	if n := keyspaces.Load(); n > 0 {
		t.Logf("%d keyspaces created, %.2fs each on average (keyspace + schema + session)",
			n, time.Duration(keyspaceTime.Load()/n).Seconds())
	}
}
