package integration

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stoa-mail/stoa/indexer/indexertest"
	"github.com/stoa-mail/stoa/integration/harness"
)

// BenchmarkIMAPSearchText (make bench-imap-search): UID SEARCH TEXT over
// IMAP against the real server, on a generated mailbox of
// STOA_BENCH_SEARCH_N messages (default 100,000) imported with stoa import
// and indexed by the server's own indexer; Bleve, and OpenSearch when
// STOA_TEST_OPENSEARCH is set. Words are drawn as often as they occur in
// the mail (Zipf), so most queries are frequent words with tens of
// thousands of hits: the worst case for an IMAP SEARCH answer.
func BenchmarkIMAPSearchText(b *testing.B) {
	n := 100000
	if v := os.Getenv("STOA_BENCH_SEARCH_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	mbox := filepath.Join(b.TempDir(), "bench.mbox")
	f, err := os.Create(mbox)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	gen := indexertest.NewGenerator(20000, 1)
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, "From bench@example.com Mon Jan  2 15:04:05 2026\n%s\n", strings.ReplaceAll(string(gen.Message(i)), "\r\n", "\n"))
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	backends := [][]string{{"STOA_INDEX_BACKEND=bleve"}}
	if u := os.Getenv("STOA_TEST_OPENSEARCH"); u != "" {
		backends = append(backends, []string{"STOA_INDEX_BACKEND=opensearch", "STOA_INDEX_OPENSEARCH_URL=" + u,
			fmt.Sprintf("STOA_INDEX_INDEX_PREFIX=stoabenchimap%d", time.Now().Unix())})
	}
	for _, env := range backends {
		name := strings.TrimPrefix(env[0], "STOA_INDEX_BACKEND=")
		s := harness.Start(b, harness.Options{
			Accounts: map[string]string{"alice@example.test": "alicepw"},
			Roles:    []string{"imap", "indexer"},
			Env:      append([]string{"STOA_IMAP_ALLOW_INSECURE_AUTH=true", "STOA_SERVER_LOG_LEVEL=info"}, env...),
		})
		t0 := time.Now()
		if out, err := s.Stoa("import", "--account", "alice@example.test", "--quiet", mbox); err != nil {
			b.Fatalf("import: %v\n%s", err, out)
		}
		imported := time.Since(t0)
		for rmMetric(s.Addr["admin"], "stoa_index_documents_total") < float64(n) {
			time.Sleep(500 * time.Millisecond)
		}
		indexed := time.Since(t0) - imported
		// Bleve merges segments for a while after a bulk load: searches
		// are measured once the server is idle, as a mailbox searched
		// later would be (at most 2 minutes).
		settle := waitIdle(serverPID(s), 2*time.Minute)
		fmt.Printf("%s: imported %d messages in %v, indexed %v later; server idle %v after that\n", name, n,
			imported.Round(time.Second), indexed.Round(time.Second), settle.Round(time.Second))
		r := benchLogin(b, s.Addr["imap"])
		r.ok("S", "SELECT INBOX")
		// A JVM (OpenSearch) that just started compiles for the first few
		// dozen queries: those are run first and reported apart.
		wg := indexertest.NewGenerator(20000, 3)
		var warm []time.Duration
		for i := 0; i < 50; i++ {
			t := time.Now()
			r.ok("W", "UID SEARCH TEXT "+wg.Word())
			warm = append(warm, time.Since(t))
		}
		sortDurations(warm)
		fmt.Printf("%s: warm-up, 50 queries not counted below: p50 %v max %v\n", name,
			warm[len(warm)/2].Round(100*time.Microsecond), warm[len(warm)-1].Round(100*time.Microsecond))
		qg := indexertest.NewGenerator(20000, 2)
		var ds []time.Duration
		hits := 0
		const queries = 200
		for i := 0; i < queries; i++ {
			word := qg.Word()
			t := time.Now()
			u := r.ok("Q", "UID SEARCH TEXT "+word)
			ds = append(ds, time.Since(t))
			for _, l := range u {
				if strings.HasPrefix(l, "* SEARCH") {
					hits += len(strings.Fields(l)) - 2
				}
			}
		}
		r.c.Close()
		sortDurations(ds)
		p99 := ds[(len(ds)*99+99)/100-1]
		b.ReportMetric(float64(p99.Microseconds())/1000, name+"-ms-p99")
		fmt.Printf("%s: IMAP UID SEARCH TEXT on %d messages, words as frequent as in the mail (Zipf): p50 %v p99 %v (%d queries, mean %d hits)\n",
			name, n, ds[len(ds)/2].Round(100*time.Microsecond), p99.Round(100*time.Microsecond), queries, hits/queries)
		s.Stop()
	}
}

// waitIdle waits until process pid uses under 5% of a CPU over a second,
// or max has passed; it returns the time waited.
func waitIdle(pid int, max time.Duration) time.Duration {
	t0 := time.Now()
	cpu := func() float64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return -1
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		var ut, st float64
		fmt.Sscan(f[11], &ut) // utime, stime: fields 14 and 15 (proc(5))
		fmt.Sscan(f[12], &st)
		return (ut + st) / 100 // clock ticks, USER_HZ = 100
	}
	for time.Since(t0) < max {
		a := cpu()
		time.Sleep(time.Second)
		if b := cpu(); a < 0 || b-a < 0.05 {
			break
		}
	}
	return time.Since(t0)
}
