package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stoa-mail/stoa/cmd/stoa/config"
	"github.com/stoa-mail/stoa/indexer"
	"github.com/stoa-mail/stoa/indexer/bleve"
	"github.com/stoa-mail/stoa/indexer/opensearch"
)

// The indexer role tails every account's change log into the search index
// (ADR 0008). With Bleve it must run inside `stoa serve` (one process opens
// the index); with OpenSearch it may run as its own process, `stoa indexer`.

func init() {
	RegisterRole(Role{Name: "indexer", Order: 5, Start: startIndexer})
	register(command{name: "indexer", usage: "run only the indexer role (the OpenSearch sidecar)", run: runIndexerOnly})
}

// searchState is the one search back end of a process.
type searchState struct {
	once     sync.Once
	backend  indexer.Backend
	searcher *indexer.Searcher
	err      error
}

var (
	searchStates sync.Map                        // *App → *searchState
	liveIndexer  atomic.Pointer[indexer.Indexer] // for `stoa reindex` run inside the server
)

// openBackend opens the configured back end.
func openBackend(ctx context.Context, cfg config.Config) (indexer.Backend, error) {
	switch cfg.Index.Backend {
	case "bleve":
		return bleve.Open(filepath.Join(cfg.Server.DataDir, "index"))
	case "opensearch":
		return opensearch.Open(ctx, osConfig(cfg))
	}
	return nil, fmt.Errorf("index.backend %q", cfg.Index.Backend)
}

func osConfig(cfg config.Config) opensearch.Config {
	return opensearch.Config{URLs: cfg.Index.OpenSearchURL, Prefix: cfg.Index.IndexPrefix,
		FlushInterval: cfg.Index.FlushInterval.Duration, Shards: cfg.Index.Shards, Replicas: cfg.Index.Replicas}
}

// Searcher returns the process's searcher, opening the back end on first
// use; nil when index.backend is none (the caller scans). Protocol roles
// (IMAP SEARCH, JMAP Email/query) call it:
//
//	s, err := Searcher(ctx, a)
//	uids, err := s.Search(ctx, accountID, mailboxID, indexer.And(indexer.From("bob"), indexer.Text("invoice")))
//
// indexer.ErrIndexBehind from Search means: scan instead.
func Searcher(ctx context.Context, a *App) (*indexer.Searcher, error) {
	if a.Cfg.Index.Backend == "none" {
		return nil, nil
	}
	v, _ := searchStates.LoadOrStore(a, &searchState{})
	st := v.(*searchState)
	st.once.Do(func() {
		st.backend, st.err = openBackend(ctx, a.Cfg)
		if st.err != nil {
			return
		}
		st.searcher = &indexer.Searcher{Store: a.Store, Backend: st.backend}
		b := st.backend
		a.OnClose(b.Close)
	})
	return st.searcher, st.err
}

func startIndexer(ctx context.Context, a *App) error {
	if a.Cfg.Index.Backend == "none" {
		a.Log.Info("index.backend = none: no indexer; search scans messages")
		return nil
	}
	s, err := Searcher(ctx, a)
	if err != nil {
		return fmt.Errorf("search index: %w", err)
	}
	docs := prometheus.NewCounter(prometheus.CounterOpts{Name: "stoa_index_documents_total", Help: "Documents written to the search index."})
	applies := prometheus.NewCounter(prometheus.CounterOpts{Name: "stoa_index_batches_total", Help: "Change batches applied to the search index."})
	a.Registry.MustRegister(docs, applies)
	ix := &indexer.Indexer{Store: a.Store, Backend: s.Backend, Log: a.Log, BatchSize: a.Cfg.Index.BatchSize,
		PollInterval: a.Cfg.Index.PollInterval.Duration, SweepInterval: a.Cfg.Index.SweepInterval.Duration,
		FeedOverlap: a.Cfg.Index.FeedOverlap.Duration, Workers: a.Cfg.Index.Workers, Watch: true,
		OnApplied: func(_ string, _ uint64, n int) { docs.Add(float64(n)); applies.Inc() }}
	liveIndexer.Store(ix)
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := ix.Run(rctx); err != nil {
			a.Log.Error("indexer stopped", "err", err)
		}
	}()
	// Registered after the back end's Close, so it runs before it.
	a.OnClose(func() error {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			return errors.New("indexer did not stop within 30s")
		}
		return nil
	})
	a.Listen("indexer", a.Cfg.Index.Backend)
	return nil
}

// runIndexerOnly is `stoa indexer`: `stoa serve` with only the indexer role.
func runIndexerOnly(ctx context.Context, cfg config.Config, args []string) error {
	if cfg.Index.Backend != "opensearch" {
		return fmt.Errorf("index.backend is %q: only OpenSearch is indexed by a separate process; Bleve runs inside stoa serve", cfg.Index.Backend)
	}
	cfg.Server.Roles = []string{"indexer"}
	return serve(ctx, cfg, args)
}
