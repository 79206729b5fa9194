package integration

// Smoke tests for the real test servers started by `make test`
// (integration/services): they prove the servers accept the features Stoa
// relies on, before any Stoa code is involved.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/stoa-mail/stoa/integration/testenv"
)

func randomSuffix(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestCassandraSmoke: NetworkTopologyStrategy keyspace in dc1, and a
// lightweight transaction (INSERT ... IF NOT EXISTS) applied once only.
func TestCassandraSmoke(t *testing.T) {
	addr := testenv.Cassandra(t)

	cluster := gocql.NewCluster(strings.Split(addr, ",")...)
	cluster.Consistency = gocql.LocalQuorum
	cluster.SerialConsistency = gocql.LocalSerial
	cluster.Timeout = 10 * time.Second
	cluster.ConnectTimeout = 10 * time.Second
	session, err := cluster.CreateSession()
	if err != nil {
		t.Fatalf("connect to Cassandra at %s: %v", addr, err)
	}
	t.Cleanup(session.Close) // cleanups run last-in first-out: after the DROP below

	ks := "stoa_smoke_" + randomSuffix(t)
	if err := session.Query(fmt.Sprintf(
		`CREATE KEYSPACE %s WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 1}`, ks)).Exec(); err != nil {
		t.Fatalf("create keyspace: %v", err)
	}
	t.Cleanup(func() {
		if err := session.Query("DROP KEYSPACE IF EXISTS " + ks).Exec(); err != nil {
			t.Errorf("drop keyspace: %v", err)
		}
	})
	if err := session.Query(fmt.Sprintf(
		`CREATE TABLE %s.accounts (name text PRIMARY KEY, id uuid, created timestamp)`, ks)).Exec(); err != nil {
		t.Fatalf("create table: %v", err)
	}

	insert := fmt.Sprintf(`INSERT INTO %s.accounts (name, id, created) VALUES (?, ?, ?) IF NOT EXISTS`, ks)
	first := gocql.TimeUUID()
	existing := map[string]any{}
	applied, err := session.Query(insert, "alice", first, time.Now()).MapScanCAS(existing)
	if err != nil {
		t.Fatalf("first LWT insert: %v", err)
	}
	if !applied {
		t.Fatalf("first INSERT IF NOT EXISTS not applied; existing row %v", existing)
	}

	second := gocql.TimeUUID()
	existing = map[string]any{}
	applied, err = session.Query(insert, "alice", second, time.Now()).MapScanCAS(existing)
	if err != nil {
		t.Fatalf("second LWT insert: %v", err)
	}
	if applied {
		t.Fatal("second INSERT IF NOT EXISTS was applied; want not applied")
	}
	if got, _ := existing["id"].(gocql.UUID); got != first {
		t.Fatalf("second INSERT returned id %v, want the existing row's id %v (row %v)", existing["id"], first, existing)
	}

	var id gocql.UUID
	if err := session.Query(fmt.Sprintf(`SELECT id FROM %s.accounts WHERE name = ?`, ks), "alice").Scan(&id); err != nil {
		t.Fatalf("select: %v", err)
	}
	if id != first {
		t.Fatalf("stored id %v, want %v", id, first)
	}
}

// TestOpenSearchSmoke: create an index with a mapping, bulk-index, search.
func TestOpenSearchSmoke(t *testing.T) {
	url := testenv.OpenSearch(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	client, err := opensearchapi.NewClient(opensearchapi.Config{
		Client: opensearch.Config{Addresses: []string{url}},
	})
	if err != nil {
		t.Fatal(err)
	}

	index := "stoa-smoke-" + randomSuffix(t)
	mapping := `{
	  "settings": {"number_of_shards": 1, "number_of_replicas": 0},
	  "mappings": {"properties": {
	    "subject": {"type": "text"},
	    "from":    {"type": "keyword"},
	    "date":    {"type": "date"}
	  }}
	}`
	if _, err := client.Indices.Create(ctx, opensearchapi.IndicesCreateReq{
		Index: index, Body: strings.NewReader(mapping),
	}); err != nil {
		t.Fatalf("create index: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := client.Indices.Delete(ctx, opensearchapi.IndicesDeleteReq{Indices: []string{index}}); err != nil {
			t.Errorf("delete index: %v", err)
		}
	})

	var bulk strings.Builder
	for _, d := range []struct{ id, subject, from string }{
		{"m1", "Quarterly invoice attached", "billing@example.com"},
		{"m2", "Lunch on Friday?", "bob@example.com"},
		{"m3", "Re: invoice question", "alice@example.com"},
	} {
		fmt.Fprintf(&bulk, `{"index":{"_id":%q}}`+"\n", d.id)
		fmt.Fprintf(&bulk, `{"subject":%q,"from":%q,"date":"2026-01-02T03:04:05Z"}`+"\n", d.subject, d.from)
	}
	resp, err := client.Bulk(ctx, opensearchapi.BulkReq{
		Index:  index,
		Body:   strings.NewReader(bulk.String()),
		Params: opensearchapi.BulkParams{Refresh: "true"},
	})
	if err != nil {
		t.Fatalf("bulk: %v", err)
	}
	if resp.Errors || len(resp.Items) != 3 {
		t.Fatalf("bulk: errors=%v items=%d, want no errors and 3 items: %+v", resp.Errors, len(resp.Items), resp.Items)
	}

	search, err := client.Search(ctx, &opensearchapi.SearchReq{
		Indices: []string{index},
		Body:    strings.NewReader(`{"query": {"match": {"subject": "invoice"}}}`),
	})
	if err != nil {
		t.Fatalf("search: %v", err)
	}
	var ids []string
	for _, h := range search.Hits.Hits {
		ids = append(ids, h.ID)
	}
	slices.Sort(ids)
	if want := []string{"m1", "m3"}; !slices.Equal(ids, want) {
		t.Fatalf("search for 'invoice' returned ids %v, want %v", ids, want)
	}
}
