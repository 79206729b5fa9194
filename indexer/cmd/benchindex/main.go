// Command benchindex measures the indexer and search (make bench-index):
// indexing throughput with Bleve and OpenSearch, delivery-to-searchable lag
// with OpenSearch, and SEARCH TEXT latency on a large mailbox.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/stoa-mail/stoa/indexer"
	"github.com/stoa-mail/stoa/indexer/bleve"
	"github.com/stoa-mail/stoa/indexer/indexertest"
	"github.com/stoa-mail/stoa/indexer/opensearch"
	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/embedded"
)

var (
	n        = flag.Int("n", 100000, "messages in the mailbox")
	queries  = flag.Int("queries", 500, "SEARCH TEXT queries per back end")
	lagN     = flag.Int("lag", 100, "deliveries measured for lag")
	osURL    = flag.String("opensearch", os.Getenv("STOA_TEST_OPENSEARCH"), "OpenSearch URL (empty: skip OpenSearch)")
	backends = flag.String("backends", "bleve,opensearch", "back ends to measure")
	dir      = flag.String("dir", "", "work directory, kept and reused by the next run with the same -dir (default: a temporary one, removed)")
	batch    = flag.Int("batch", 500, "change records per indexing batch")
	cpuprof  = flag.String("cpuprofile", "", "write CPU profiles of indexing and searching to this path + .<back end>[.search]")
	warmup   = flag.Int("warmup", 50, "queries run (and reported apart) before the measured ones: a JVM that just started compiles for the first few dozen")
	slowest  = flag.Int("slowest", 0, "print this many slowest queries of each run (position, word, hits, latency)")

	sidecarCass     = flag.String("sidecar", "", "Cassandra hosts: measure the indexer as a sidecar through the activity feed instead (ADR 0009)")
	sidecarAccounts = flag.Int("sidecar-accounts", 2000, "accounts for -sidecar")
	sidecarPoll     = flag.Duration("sidecar-poll", 250*time.Millisecond, "activity feed poll interval for -sidecar")
)

var ctx = context.Background()

func main() {
	flag.Parse()
	slog.SetLogLoggerLevel(slog.LevelWarn)
	if *sidecarCass != "" {
		sidecar(*sidecarCass, *sidecarAccounts)
		return
	}
	work := *dir
	if work == "" {
		d, err := os.MkdirTemp("", "benchindex")
		check(err)
		defer os.RemoveAll(d)
		work = d
	}
	eng, err := embedded.Open(filepath.Join(work, "db"), embedded.Options{NoSync: true})
	check(err)
	st := storage.New(eng, storage.Config{PasswordCost: storage.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}})
	defer st.Close()
	gen := indexertest.NewGenerator(20000, 1)
	acct, err := st.AddAccount(ctx, "bench@example.test", "", storage.AccountOptions{})
	start := 0
	if errors.Is(err, storage.ErrExists) && *dir != "" {
		// -dir kept from an earlier run: reuse its mailbox.
		acct, err = st.AccountByAddress(ctx, "bench@example.test")
		check(err)
		start = *n
	}
	check(err)
	inbox, err := st.MailboxByName(ctx, acct.ID, "INBOX")
	check(err)

	t0 := time.Now()
	for i := start; i < *n; i++ {
		_, err := st.Append(ctx, acct.ID, inbox.ID, gen.Message(i), nil, time.Time{})
		check(err)
		if i%10000 == 9999 {
			fmt.Fprintf(os.Stderr, "generated %d messages (%.0f/s)\n", i+1, float64(i+1)/time.Since(t0).Seconds())
		}
	}
	fmt.Printf("mailbox: %d generated messages in %v\n", *n, time.Since(t0).Round(time.Millisecond))

	for _, name := range strings.Split(*backends, ",") {
		var b indexer.Backend
		var os_ *opensearch.Index
		switch name {
		case "bleve":
			x, err := bleve.Open(filepath.Join(work, "index"))
			check(err)
			b = x
		case "opensearch":
			if *osURL == "" {
				fmt.Println("opensearch: skipped (no -opensearch / STOA_TEST_OPENSEARCH)")
				continue
			}
			prefix := fmt.Sprintf("stoabench%d", time.Now().Unix())
			if *dir != "" {
				prefix = "stoabench-" + filepath.Base(*dir) // kept with -dir
			}
			x, err := opensearch.Open(ctx, opensearch.Config{URLs: []string{*osURL}, Prefix: prefix})
			check(err)
			os_, b = x, x
			if *dir == "" {
				defer os_.DeleteTemplate(ctx)
				defer os_.DeleteIndex(ctx, opensearch.Config{Prefix: prefix}.Generation(1))
			}
		default:
			continue
		}
		ix := &indexer.Indexer{Store: st, Backend: b, BatchSize: *batch}
		if *cpuprof != "" {
			f, err := os.Create(*cpuprof + "." + name)
			check(err)
			check(pprof.StartCPUProfile(f))
		}
		t, c := time.Now(), cpuTime()
		check(ix.Sync(ctx, acct.ID))
		d, cd := time.Since(t), cpuTime()-c
		if *cpuprof != "" {
			pprof.StopCPUProfile()
		}
		fmt.Printf("%s: indexed %d messages in %v: %.0f docs/s wall; this process used %v CPU (%.0f docs per CPU-second)\n",
			name, *n, d.Round(time.Millisecond), float64(*n)/d.Seconds(), cd.Round(time.Millisecond), float64(*n)/cd.Seconds())
		if os_ != nil {
			check(os_.Refresh(ctx))
		}
		se := &indexer.Searcher{Store: st, Backend: b}
		if *cpuprof != "" {
			f, err := os.Create(*cpuprof + "." + name + ".search")
			check(err)
			check(pprof.StartCPUProfile(f))
		}
		if *warmup > 0 {
			wg := indexertest.NewGenerator(20000, 3)
			var lat []time.Duration
			for i := 0; i < *warmup; i++ {
				t := time.Now()
				_, err := se.Search(ctx, acct.ID, inbox.ID, indexer.Text(wg.Word()))
				check(err)
				lat = append(lat, time.Since(t))
			}
			fmt.Printf("%s: warm-up, %d SEARCH TEXT queries (Zipf) not counted below: p50 %v max %v\n", name, *warmup,
				pct(lat, 50).Round(time.Microsecond), pct(lat, 100).Round(time.Microsecond))
		}
		qg := indexertest.NewGenerator(20000, 2)
		for _, mode := range []string{"words as frequent as in the mail (Zipf)", "uniformly chosen vocabulary words"} {
			var lat []time.Duration
			type q struct {
				pos  int
				word string
				hits int
				d    time.Duration
			}
			var qs []q
			hits := 0
			for i := 0; i < *queries; i++ {
				w := qg.Word()
				if mode[0] == 'u' {
					w = qg.UniformWord()
				}
				t := time.Now()
				uids, err := se.Search(ctx, acct.ID, inbox.ID, indexer.Text(w))
				check(err)
				lat = append(lat, time.Since(t))
				qs = append(qs, q{i, w, len(uids), lat[len(lat)-1]})
				hits += len(uids)
			}
			sort.Slice(qs, func(i, j int) bool { return qs[i].d > qs[j].d })
			for _, x := range qs[:min(*slowest, len(qs))] {
				fmt.Printf("  slow: #%d %q %d hits %v\n", x.pos, x.word, x.hits, x.d.Round(time.Microsecond))
			}
			fmt.Printf("%s: SEARCH TEXT on %d messages, %s: p50 %v p99 %v (%d queries, mean %d hits)\n", name, *n, mode,
				pct(lat, 50).Round(time.Microsecond), pct(lat, 99).Round(time.Microsecond), *queries, hits / *queries)
		}
		if *cpuprof != "" {
			pprof.StopCPUProfile()
		}
		if name == "opensearch" {
			lag(st, acct.ID, inbox.ID, b)
		}
		check(b.Close())
	}
}

// lag runs the indexer loop and measures delivery → found by the index
// alone (no in-process matching), one delivery every 50 ms.
func lag(st *storage.Store, acct string, mb uint32, b indexer.Backend) {
	ix := &indexer.Indexer{Store: st, Backend: b, Watch: true, PollInterval: time.Second}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go ix.Run(rctx)
	time.Sleep(time.Second)
	probes, res := prober(b)
	for i := 0; i < *lagN; i++ {
		w := fmt.Sprintf("lagprobe%dx%d", i, time.Now().UnixNano())
		raw := fmt.Sprintf("From: lag@example.test\r\nSubject: probe %d\r\n\r\n%s\r\n", i, w)
		at := time.Now()
		_, err := st.Append(ctx, acct, mb, []byte(raw), nil, time.Time{})
		check(err)
		probes <- probe{acct, mb, w, at}
		time.Sleep(50 * time.Millisecond)
	}
	close(probes)
	var lat []time.Duration
	for d := range res {
		lat = append(lat, d)
	}
	fmt.Printf("opensearch: delivery → searchable lag (refresh_interval 1s, flush 25ms): p50 %v p99 %v max %v (%d deliveries)\n",
		pct(lat, 50).Round(time.Millisecond), pct(lat, 99).Round(time.Millisecond), pct(lat, 100).Round(time.Millisecond), len(lat))
}

// probe is one delivery whose word the lag measurements wait for.
type probe struct {
	acct string
	mb   uint32
	word string
	at   time.Time // delivered
}

// prober finds the probes sent to it in order, with one search in flight
// (the probing must not load the machine more than users would; a probe
// found after an earlier one's wait counts that wait: the figures err
// high), and sends each one's delivery → found time.
func prober(b indexer.Backend) (chan<- probe, <-chan time.Duration) {
	probes := make(chan probe, *lagN)
	res := make(chan time.Duration, *lagN)
	go func() {
		defer close(res)
		for p := range probes {
			for {
				uids, _, err := b.Search(ctx, p.acct, p.mb, indexer.Text(p.word))
				check(err)
				if len(uids) > 0 {
					res <- time.Since(p.at)
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()
	return probes, res
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	return s[max(0, min(i-1, len(s)-1))]
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchindex:", err)
		os.Exit(1)
	}
}
