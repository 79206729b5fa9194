package cassandra_test

// Benchmarks against a real Cassandra (skipped without STOA_TEST_CASSANDRA),
// mirroring storage/embedded/bench_test.go. Besides ns/op they report
// deliveries/s, LWTs per delivery (from the engine's counter) and p50/p99
// latencies. Run with e.g.
//
//	STOA_TEST_CASSANDRA=127.0.0.1:9042 go test -run '^$' -bench . -benchtime 2000x ./storage/cassandra/

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/cassandra"
)

func benchStore(b *testing.B) (*storage.Store, *cassandra.Engine) {
	e := openTest(b)
	b.Cleanup(func() { e.Close() })
	return storage.New(e, storage.Config{PasswordCost: storage.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}}), e.Engine
}

var seq atomic.Int64

// msg4k is a unique message of about 4 KiB.
func msg4k() []byte {
	n := seq.Add(1)
	body := strings.Repeat("The quick brown fox jumps over the lazy dog. 0123456789\r\n", 70)
	return []byte(fmt.Sprintf("From: a@example.org\r\nTo: b@example.test\r\nSubject: bench %d\r\nMessage-ID: <b%d.%d@example.org>\r\n\r\n%s", n, n, time.Now().UnixNano(), body))
}

// writers sets 8 concurrent goroutines for RunParallel on any core count.
func writers(b *testing.B) {
	p := 8 / runtime.GOMAXPROCS(0)
	if p < 1 {
		p = 1
	}
	b.SetParallelism(p)
}

// latencies collects durations and reports percentiles.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, what string) {
	if len(l.d) == 0 {
		return
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	pct := func(p float64) float64 {
		return float64(l.d[min(len(l.d)-1, int(p*float64(len(l.d))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), what+"-p50-ms")
	b.ReportMetric(pct(0.99), what+"-p99-ms")
}

func reportLWTs(b *testing.B, e *cassandra.Engine, before cassandra.Stats, deliveries int) {
	st := e.Stats()
	b.ReportMetric(float64(st.CommitLWTs-before.CommitLWTs)/float64(deliveries), "LWT/delivery")
	if st.Mutations > before.Mutations {
		b.ReportMetric(float64(st.Mutations-before.Mutations)/float64(st.Commits-before.Commits), "mutations/LWT")
	}
}

// BenchmarkDeliverDistinct: deliveries of 4 KiB messages, 8 writers, each
// to its own account.
func BenchmarkDeliverDistinct(b *testing.B) {
	s, e := benchStore(b)
	ctx := context.Background()
	var accts []string
	for i := 0; i < 64; i++ {
		a, err := s.AddAccount(ctx, fmt.Sprintf("u%d@example.test", i), "", storage.AccountOptions{})
		if err != nil {
			b.Fatal(err)
		}
		accts = append(accts, a.ID)
	}
	var next atomic.Int64
	var lat latencies
	writers(b)
	b.SetBytes(4096)
	before := e.Stats()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		a := accts[next.Add(1)%int64(len(accts))]
		for pb.Next() {
			t0 := time.Now()
			res, err := s.Deliver(ctx, storage.Delivery{Raw: msg4k(), Targets: []storage.Target{{Account: a}}})
			if err != nil || res[0].Err != nil {
				b.Fatal(err, res)
			}
			lat.add(time.Since(t0))
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	reportLWTs(b, e, before, b.N)
	lat.report(b, "deliver")
}

// BenchmarkDeliverOneMailbox: 8 writers into one INBOX (group commit).
func BenchmarkDeliverOneMailbox(b *testing.B) {
	s, e := benchStore(b)
	ctx := context.Background()
	a, err := s.AddAccount(ctx, "one@example.test", "", storage.AccountOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var lat latencies
	writers(b)
	b.SetBytes(4096)
	before := e.Stats()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t0 := time.Now()
			res, err := s.Deliver(ctx, storage.Delivery{Raw: msg4k(), Targets: []storage.Target{{Account: a.ID}}})
			if err != nil || res[0].Err != nil {
				b.Fatal(err, res)
			}
			lat.add(time.Since(t0))
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	reportLWTs(b, e, before, b.N)
	lat.report(b, "deliver")
}

// BenchmarkDeliverMultiTarget: one delivery to INBOX and Junk of one
// account and INBOX of another: one LWT per account, not per mailbox.
func BenchmarkDeliverMultiTarget(b *testing.B) {
	s, e := benchStore(b)
	ctx := context.Background()
	a1, err := s.AddAccount(ctx, "m1@example.test", "", storage.AccountOptions{})
	if err != nil {
		b.Fatal(err)
	}
	a2, err := s.AddAccount(ctx, "m2@example.test", "", storage.AccountOptions{})
	if err != nil {
		b.Fatal(err)
	}
	before := e.Stats()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := s.Deliver(ctx, storage.Delivery{Raw: msg4k(), Targets: []storage.Target{
			{Account: a1.ID}, {Account: a1.ID, Role: storage.RoleJunk}, {Account: a2.ID}}})
		if err != nil || res[0].Err != nil || res[1].Err != nil || res[2].Err != nil {
			b.Fatal(err, res)
		}
	}
	st := e.Stats()
	b.ReportMetric(float64(st.CommitLWTs-before.CommitLWTs)/float64(3*b.N), "LWT/target-mailbox")
}

func filled(b *testing.B, n int) (*storage.Store, string, uint32) {
	s, _ := benchStore(b)
	ctx := context.Background()
	a, err := s.AddAccount(ctx, "fill@example.test", "", storage.AccountOptions{})
	if err != nil {
		b.Fatal(err)
	}
	in, _ := s.MailboxByName(ctx, a.ID, "INBOX")
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := s.Append(ctx, a.ID, in.ID, msg4k(), nil, time.Time{}); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	return s, a.ID, in.ID
}

// BenchmarkStoreFlags: one STORE +FLAGS on one message, sequentially.
func BenchmarkStoreFlags(b *testing.B) {
	s, a, mb := filled(b, 1000)
	ctx := context.Background()
	var lat latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		op := storage.FlagsAdd
		if i%2 == 1 {
			op = storage.FlagsRemove
		}
		t0 := time.Now()
		if _, err := s.StoreFlags(ctx, a, mb, []uint32{uint32(i%1000) + 1}, op, []string{storage.FlagSeen}, storage.StoreOptions{}); err != nil {
			b.Fatal(err)
		}
		lat.add(time.Since(t0))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "stores/s")
	lat.report(b, "store")
}

// BenchmarkFetch1000Envelopes: UIDs 1:1000 with their stored envelopes,
// one metadata read after the other (as the embedded benchmark does).
func BenchmarkFetch1000Envelopes(b *testing.B) {
	fetch1000(b, 1)
}

// BenchmarkFetch1000EnvelopesParallel: the same with 16 metadata reads in
// flight, as a FETCH over Cassandra should do it.
func BenchmarkFetch1000EnvelopesParallel(b *testing.B) {
	fetch1000(b, 16)
}

func fetch1000(b *testing.B, par int) {
	s, a, mb := filled(b, 1000)
	ctx := context.Background()
	var lat latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		es, err := s.Emails(ctx, a, mb, 1, 1000, 0)
		if err != nil || len(es) != 1000 {
			b.Fatal(err, len(es))
		}
		sem := make(chan struct{}, par)
		var wg sync.WaitGroup
		var bad atomic.Value
		for _, e := range es {
			sem <- struct{}{}
			wg.Add(1)
			go func(id string) {
				defer wg.Done()
				defer func() { <-sem }()
				m, err := s.Meta(ctx, id)
				if err != nil || m.Envelope.Subject == "" {
					bad.Store(fmt.Errorf("meta %s: %v", id, err))
				}
			}(e.BlobID)
		}
		wg.Wait()
		if err, ok := bad.Load().(error); ok {
			b.Fatal(err)
		}
		lat.add(time.Since(t0))
	}
	lat.report(b, "fetch")
}
