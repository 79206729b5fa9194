package main

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stoa-mail/stoa/indexer"
	"github.com/stoa-mail/stoa/indexer/opensearch"
	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/cassandra"
)

// sidecar measures the indexer as its own process against Cassandra and
// OpenSearch (ADR 0009): one Store writes (the mail server), another,
// with no notifications from it, runs the indexer. It reports what one
// look for work costs with the activity feed and with a sweep of every
// account, and the delivery → searchable lag through the feed.
func sidecar(hosts string, accounts int) {
	ks := fmt.Sprintf("stoabench_sidecar_%d", time.Now().Unix())
	eng, err := cassandra.Open(ctx, cassandra.Options{Hosts: strings.Split(hosts, ","), Keyspace: ks, AutoMigrate: true,
		Timeout: 20 * time.Second})
	check(err)
	defer func() {
		_ = eng.Session().Query("DROP KEYSPACE IF EXISTS " + ks).Exec()
		eng.Close()
	}()
	cost := storage.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}
	writer := storage.New(eng, storage.Config{PasswordCost: cost})
	reader := storage.New(eng, storage.Config{PasswordCost: cost})

	t0 := time.Now()
	ids := make([]string, accounts)
	inboxes := make([]uint32, accounts)
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				a, err := writer.AddAccount(ctx, fmt.Sprintf("u%d@sidecar.test", i), "", storage.AccountOptions{})
				check(err)
				mb, err := writer.MailboxByName(ctx, a.ID, "INBOX")
				check(err)
				ids[i], inboxes[i] = a.ID, mb.ID
			}
		}()
	}
	for i := range accounts {
		work <- i
	}
	close(work)
	wg.Wait()
	check(writer.FlushActivity(ctx))
	fmt.Printf("sidecar: %d accounts created on Cassandra in %v\n", accounts, time.Since(t0).Round(time.Millisecond))

	// One look for work: the feed (30 s back, 20 accounts active) against
	// reading every account's state, as the sweep does.
	time.Sleep(time.Second)
	since := time.Now()
	for i := 0; i < 20; i++ {
		_, err := writer.Append(ctx, ids[i], inboxes[i], []byte("Subject: x\r\n\r\nwarm\r\n"), nil, time.Time{})
		check(err)
	}
	check(writer.FlushActivity(ctx))
	var feedLat []time.Duration
	for i := 0; i < 20; i++ {
		t := time.Now()
		n := 0
		check(reader.Activity(ctx, since.Add(-30*time.Second+time.Second), func(storage.ActivityNote) error { n++; return nil }))
		feedLat = append(feedLat, time.Since(t))
		if n < 20 {
			check(fmt.Errorf("feed returned %d notes, want at least 20", n))
		}
	}
	t := time.Now()
	accts, err := reader.Accounts(ctx)
	check(err)
	var g errgroup.Group
	g.SetLimit(16) // as the indexer's sweep
	for _, a := range accts {
		g.Go(func() error { _, err := reader.State(ctx, a.ID); return err })
	}
	check(g.Wait())
	sweep := time.Since(t)
	fmt.Printf("sidecar: one look for work among %d accounts: activity feed p50 %v p99 %v; sweep of every account's state (16 reads in flight) %v\n",
		accounts, pct(feedLat, 50).Round(10*time.Microsecond), pct(feedLat, 99).Round(10*time.Microsecond), sweep.Round(time.Millisecond))

	if *osURL == "" {
		fmt.Println("sidecar: lag skipped (no -opensearch / STOA_TEST_OPENSEARCH)")
		return
	}
	prefix := fmt.Sprintf("stoabenchsidecar%d", time.Now().Unix())
	x, err := opensearch.Open(ctx, opensearch.Config{URLs: []string{*osURL}, Prefix: prefix})
	check(err)
	defer x.DeleteTemplate(ctx)
	defer x.DeleteIndex(ctx, opensearch.Config{Prefix: prefix}.Generation(1))
	defer x.Close()
	var synced sync.Map
	var nsynced atomic.Int64
	// pending: account -> delivery time of its probe not yet applied, to
	// split the lag into delivery → applied (feed, poll, sync, bulk) and
	// applied → searchable (the index's refresh).
	var pendMu sync.Mutex
	pending := map[string]time.Time{}
	var applied []time.Duration
	ix := &indexer.Indexer{Store: reader, Backend: x, PollInterval: *sidecarPoll,
		OnApplied: func(a string, _ uint64, n int) {
			if _, dup := synced.LoadOrStore(a, true); !dup {
				nsynced.Add(1)
			}
			pendMu.Lock()
			if at, ok := pending[a]; ok && n > 0 {
				applied = append(applied, time.Since(at))
				delete(pending, a)
			}
			pendMu.Unlock()
		}}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); ix.Run(rctx) }()
	defer func() { cancel(); <-done }()
	// The start-up sweep finds every account new to the index: wait
	// until each has its first checkpoint.
	t = time.Now()
	for nsynced.Load() < int64(accounts) {
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Printf("sidecar: start-up sweep indexed all %d accounts in %v\n", accounts, time.Since(t).Round(time.Millisecond))
	rnd := rand.New(rand.NewSource(1))
	probes, res := prober(x) // one search in flight, as the in-process lag
	used := map[int]bool{}
	for i := 0; i < *lagN; i++ {
		k := rnd.Intn(accounts)
		for used[k] { // one probe per account: its applied time is its own
			k = rnd.Intn(accounts)
		}
		used[k] = true
		w := fmt.Sprintf("sidecarprobe%dx%d", i, time.Now().UnixNano())
		at := time.Now()
		pendMu.Lock()
		pending[ids[k]] = at
		pendMu.Unlock()
		_, err := writer.Append(ctx, ids[k], inboxes[k], []byte("From: lag@example.test\r\nSubject: probe\r\n\r\n"+w+"\r\n"), nil, time.Time{})
		check(err)
		probes <- probe{ids[k], inboxes[k], w, at}
		time.Sleep(50 * time.Millisecond)
	}
	close(probes)
	var lat []time.Duration
	for d := range res {
		lat = append(lat, d)
	}
	pendMu.Lock()
	fmt.Printf("sidecar: delivery → applied to OpenSearch (feed flush, poll, sync, bulk): p50 %v p99 %v max %v (%d deliveries)\n",
		pct(applied, 50).Round(time.Millisecond), pct(applied, 99).Round(time.Millisecond), pct(applied, 100).Round(time.Millisecond), len(applied))
	pendMu.Unlock()
	fmt.Printf("sidecar: delivery → searchable lag through the activity feed (Cassandra, OpenSearch, poll %v, feed flush 100ms, %d accounts): p50 %v p99 %v max %v (%d deliveries)\n",
		*sidecarPoll, accounts, pct(lat, 50).Round(time.Millisecond), pct(lat, 99).Round(time.Millisecond), pct(lat, 100).Round(time.Millisecond), len(lat))
}
