// Package opensearch is the search back end for clusters: documents routed
// by account, external versions (the MODSEQ), an index template with a
// strict mapping, and read/write aliases over generation indices
// (<prefix>-mail-v1, -v2…) so that a rebuild is swapped in without
// downtime (ADR 0008).
package opensearch

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	os "github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/opensearch-project/opensearch-go/v4/opensearchutil"

	"github.com/stoa-mail/stoa/indexer"
)

// Template is the index template body (settings and strict mapping).
//
//go:embed template.json
var Template []byte

// Config says where and how to index.
type Config struct {
	URLs          []string
	Prefix        string        // index names start with Prefix + "-mail" (default "stoa")
	FlushInterval time.Duration // bulk flush (default 25ms; Apply waits for it twice)
	FlushBytes    int           // bulk flush size (default 5 MB)
	Workers       int           // bulk workers (default 2)
	Shards        int           // 0: the template's
	Replicas      int           // -1: the template's
	// Index, if set, reads and writes this concrete index instead of the
	// aliases (a rebuild in progress).
	Index string
	// NoScripts makes searches page through hits instead of using the
	// Painless aggregation that returns UID sets compactly (for clusters
	// without lang-painless or with inline scripts disabled; Search also
	// falls back by itself when the cluster refuses the script).
	NoScripts bool
}

// Names of the template, aliases and generation indices.
func (c Config) base() string {
	p := c.Prefix
	if p == "" {
		p = "stoa"
	}
	return p + "-mail"
}

// ReadAlias is where searches go.
func (c Config) ReadAlias() string { return c.base() + "-read" }

// WriteAlias is where the indexer writes.
func (c Config) WriteAlias() string { return c.base() + "-write" }

// Generation names index generation n.
func (c Config) Generation(n int) string { return c.base() + "-v" + strconv.Itoa(n) }

// Index is an OpenSearch back end.
type Index struct {
	cfg    Config
	cl     *opensearchapi.Client
	bi     opensearchutil.BulkIndexer
	read   string
	write  string
	closed sync.Once
	// noScripts is set once the cluster refused the UID-set script.
	noScripts atomic.Bool
}

var _ indexer.Backend = (*Index)(nil)

// Open connects, installs the template and creates generation 1 behind the
// aliases when no index exists yet.
func Open(ctx context.Context, cfg Config) (*Index, error) {
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 25 * time.Millisecond
	}
	if cfg.FlushBytes <= 0 {
		cfg.FlushBytes = 5 << 20
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	cl, err := opensearchapi.NewClient(opensearchapi.Config{Client: os.Config{Addresses: cfg.URLs}})
	if err != nil {
		return nil, err
	}
	x := &Index{cfg: cfg, cl: cl, read: cfg.ReadAlias(), write: cfg.WriteAlias()}
	x.noScripts.Store(cfg.NoScripts)
	if cfg.Index != "" {
		x.read, x.write = cfg.Index, cfg.Index
	}
	if err := x.setup(ctx); err != nil {
		return nil, err
	}
	x.bi, err = opensearchutil.NewBulkIndexer(opensearchutil.BulkIndexerConfig{
		Client: cl, Index: x.write, NumWorkers: cfg.Workers, FlushBytes: cfg.FlushBytes, FlushInterval: cfg.FlushInterval,
	})
	if err != nil {
		return nil, err
	}
	return x, nil
}

// Close flushes and closes.
func (x *Index) Close() error {
	var err error
	x.closed.Do(func() {
		err = x.bi.Close(context.Background())
		x.cl.Close()
	})
	return err
}

// do sends one request; a status >= 300 is an error unless listed in ok.
func (x *Index) do(ctx context.Context, method, path string, body any, out any, ok ...int) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		if raw, isRaw := body.(json.RawMessage); isRaw {
			b = raw
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return 0, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := x.cl.Client.Perform(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		for _, s := range ok {
			if s == resp.StatusCode {
				return resp.StatusCode, nil
			}
		}
		if len(data) > 512 {
			data = data[:512]
		}
		return resp.StatusCode, fmt.Errorf("opensearch %s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return resp.StatusCode, json.Unmarshal(data, out)
	}
	return resp.StatusCode, nil
}

func (x *Index) templateBody() (json.RawMessage, error) {
	var t map[string]any
	if err := json.Unmarshal(Template, &t); err != nil {
		return nil, err
	}
	idx := t["settings"].(map[string]any)["index"].(map[string]any)
	if x.cfg.Shards > 0 {
		idx["number_of_shards"] = x.cfg.Shards
	}
	if x.cfg.Replicas >= 0 {
		idx["number_of_replicas"] = x.cfg.Replicas
	}
	body := map[string]any{"index_patterns": []string{x.cfg.base() + "-v*"}, "template": t, "priority": 100,
		"_meta": map[string]any{"managed_by": "stoa"}}
	b, err := json.Marshal(body)
	return b, err
}

func (x *Index) setup(ctx context.Context) error {
	tb, err := x.templateBody()
	if err != nil {
		return err
	}
	if _, err := x.do(ctx, "PUT", "/_index_template/"+x.cfg.base(), tb, nil); err != nil {
		return err
	}
	if x.cfg.Index != "" {
		return x.CreateIndex(ctx, x.cfg.Index)
	}
	st, err := x.do(ctx, "HEAD", "/_alias/"+x.write, nil, nil, 404)
	if err != nil {
		return err
	}
	if st == 404 {
		body := map[string]any{"aliases": map[string]any{x.read: map[string]any{}, x.write: map[string]any{"is_write_index": true}}}
		if _, err := x.do(ctx, "PUT", "/"+x.cfg.Generation(1), body, nil, 400); err != nil {
			return err // 400: created concurrently by another process
		}
	}
	return nil
}

// CreateIndex creates a generation index (from the template) if absent.
func (x *Index) CreateIndex(ctx context.Context, name string) error {
	st, err := x.do(ctx, "HEAD", "/"+name, nil, nil, 404)
	if err != nil || st != 404 {
		return err
	}
	_, err = x.do(ctx, "PUT", "/"+name, map[string]any{}, nil)
	return err
}

// Generations lists the indices the aliases point at (read, write).
func (x *Index) aliasTarget(ctx context.Context, alias string) (string, error) {
	var out map[string]any
	if _, err := x.do(ctx, "GET", "/_alias/"+alias, nil, &out); err != nil {
		return "", err
	}
	for k := range out {
		return k, nil
	}
	return "", fmt.Errorf("alias %s points nowhere", alias)
}

// NextGeneration returns the name of the index after the current one.
func (x *Index) NextGeneration(ctx context.Context) (cur, next string, err error) {
	cur, err = x.aliasTarget(ctx, x.cfg.WriteAlias())
	if err != nil {
		return "", "", err
	}
	n, _ := strconv.Atoi(cur[strings.LastIndex(cur, "-v")+2:])
	return cur, x.cfg.Generation(n + 1), nil
}

// SwapAliases points both aliases at index in one atomic update.
func (x *Index) SwapAliases(ctx context.Context, index string) error {
	acts := []any{
		map[string]any{"remove": map[string]any{"index": x.cfg.base() + "-v*", "alias": x.cfg.ReadAlias()}},
		map[string]any{"remove": map[string]any{"index": x.cfg.base() + "-v*", "alias": x.cfg.WriteAlias()}},
		map[string]any{"add": map[string]any{"index": index, "alias": x.cfg.ReadAlias()}},
		map[string]any{"add": map[string]any{"index": index, "alias": x.cfg.WriteAlias(), "is_write_index": true}},
	}
	_, err := x.do(ctx, "POST", "/_aliases", map[string]any{"actions": acts}, nil)
	return err
}

// DeleteIndex removes a generation index.
func (x *Index) DeleteIndex(ctx context.Context, name string) error {
	_, err := x.do(ctx, "DELETE", "/"+name, nil, nil, 404)
	return err
}

// DeleteTemplate removes the index template (tests, benchmarks).
func (x *Index) DeleteTemplate(ctx context.Context) error {
	_, err := x.do(ctx, "DELETE", "/_index_template/"+x.cfg.base(), nil, nil, 404)
	return err
}

// Refresh makes every write searchable now (tests, benchmarks).
func (x *Index) Refresh(ctx context.Context) error {
	_, err := x.do(ctx, "POST", "/"+x.write+"/_refresh", nil, nil)
	return err
}

type waiter struct {
	wg  sync.WaitGroup
	mu  sync.Mutex
	err error
}

func (w *waiter) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

func (x *Index) add(ctx context.Context, w *waiter, action, id, routing string, version uint64, body []byte) error {
	it := opensearchutil.BulkIndexerItem{Action: action, DocumentID: id, Routing: &routing}
	if version > 0 {
		v, vt := int64(version), "external"
		it.Version, it.VersionType = &v, &vt
	}
	if body != nil {
		it.Body = bytes.NewReader(body)
	}
	it.OnSuccess = func(context.Context, opensearchutil.BulkIndexerItem, opensearchapi.BulkRespItem) { w.wg.Done() }
	it.OnFailure = func(_ context.Context, _ opensearchutil.BulkIndexerItem, r opensearchapi.BulkRespItem, err error) {
		defer w.wg.Done()
		switch {
		case err != nil:
			w.fail(err)
		case r.Status == http.StatusConflict: // a newer version is indexed: keep it
		case r.Status == http.StatusNotFound && action == "delete":
		default:
			reason := ""
			if r.Error != nil {
				reason = r.Error.Type + ": " + r.Error.Reason
			}
			w.fail(fmt.Errorf("opensearch %s %s: %d %s", action, id, r.Status, reason))
		}
	}
	w.wg.Add(1)
	if err := x.bi.Add(ctx, it); err != nil {
		w.wg.Done()
		return err
	}
	return nil
}

// Apply sends b through the bulk indexer and waits for it; the checkpoint
// is written only after every document is acknowledged. It lives in the
// same shard as the account's documents (same routing), so a search never
// sees a checkpoint newer than the documents (see Search).
func (x *Index) Apply(ctx context.Context, account string, b *indexer.Batch) error {
	w := &waiter{}
	for _, mb := range b.DeleteMailboxes {
		// Expunge records deleted these with versions already; this pass
		// only catches strays, so plain deletes do.
		err := x.ids(ctx, account, term("mailbox", mb), func(id string) error {
			return x.add(ctx, w, "delete", id, account, 0, nil)
		})
		if err != nil {
			return err
		}
	}
	for _, d := range b.Deletes {
		if err := x.add(ctx, w, "delete", d.ID, account, d.Version, nil); err != nil {
			return err
		}
	}
	for _, d := range b.Docs {
		body, err := json.Marshal(toDoc(d))
		if err != nil {
			return err
		}
		if err := x.add(ctx, w, "index", indexer.DocID(account, d.Mailbox, d.UID), account, d.ModSeq, body); err != nil {
			return err
		}
	}
	w.wg.Wait()
	if w.err != nil {
		return w.err
	}
	if b.Checkpoint == 0 {
		return nil
	}
	body, _ := json.Marshal(map[string]any{"kind": indexer.KindCheckpoint, "account": account, "modseq": b.Checkpoint})
	if err := x.add(ctx, w, "index", indexer.CheckpointID(account), account, 0, body); err != nil {
		return err
	}
	w.wg.Wait()
	return w.err
}

// Checkpoint reads the account's checkpoint (real-time GET).
func (x *Index) Checkpoint(ctx context.Context, account string) (uint64, error) {
	var out struct {
		Found  bool `json:"found"`
		Source struct {
			ModSeq uint64 `json:"modseq"`
		} `json:"_source"`
	}
	path := "/" + x.read + "/_doc/" + url.PathEscape(indexer.CheckpointID(account)) + "?routing=" + url.QueryEscape(account)
	if _, err := x.do(ctx, "GET", path, nil, &out, 404); err != nil {
		return 0, err
	}
	return out.Source.ModSeq, nil
}

type hit struct {
	ID     string           `json:"_id"`
	Sort   []any            `json:"sort"`
	Fields map[string][]any `json:"fields"`
}

type searchResp struct {
	Hits struct {
		Hits []hit `json:"hits"`
	} `json:"hits"`
}

const page = 10000

// Checkpoints lists every account's checkpoint.
func (x *Index) Checkpoints(ctx context.Context) (map[string]uint64, error) {
	out := map[string]uint64{}
	var after []any
	for {
		q := map[string]any{"size": page, "_source": false, "track_total_hits": false,
			"query":           term("kind", indexer.KindCheckpoint),
			"docvalue_fields": []string{"account", "modseq"}, "sort": []any{map[string]any{"account": "asc"}}}
		if after != nil {
			q["search_after"] = after
		}
		var r searchResp
		if _, err := x.do(ctx, "POST", "/"+x.read+"/_search", q, &r); err != nil {
			return nil, err
		}
		for _, h := range r.Hits.Hits {
			a, _ := first(h.Fields["account"]).(string)
			m, _ := first(h.Fields["modseq"]).(float64)
			out[a] = uint64(m)
		}
		if len(r.Hits.Hits) < page {
			return out, nil
		}
		after = r.Hits.Hits[len(r.Hits.Hits)-1].Sort
	}
}

func first(v []any) any {
	if len(v) == 0 {
		return nil
	}
	return v[0]
}

// DocIDs lists the account's email documents.
func (x *Index) DocIDs(ctx context.Context, account string, fn func(string) error) error {
	return x.ids(ctx, account, nil, fn)
}

func (x *Index) ids(ctx context.Context, account string, extra any, fn func(string) error) error {
	filter := []any{term("account", account), term("kind", indexer.KindEmail)}
	if extra != nil {
		filter = append(filter, extra)
	}
	var after []any
	for {
		q := map[string]any{"size": page, "_source": false, "track_total_hits": false,
			"query": map[string]any{"bool": map[string]any{"filter": filter}},
			"sort":  []any{map[string]any{"mailbox": "asc"}, map[string]any{"uid": "asc"}}}
		if after != nil {
			q["search_after"] = after
		}
		var r searchResp
		if _, err := x.do(ctx, "POST", "/"+x.read+"/_search?routing="+url.QueryEscape(account), q, &r); err != nil {
			return err
		}
		for _, h := range r.Hits.Hits {
			if err := fn(h.ID); err != nil {
				return err
			}
		}
		if len(r.Hits.Hits) < page {
			return nil
		}
		after = r.Hits.Hits[len(r.Hits.Hits)-1].Sort
	}
}

// DropAccount deletes every document of account, checkpoint included
// (plain deletes: the account is gone, nothing newer will come). The
// integration build of OpenSearch has no _delete_by_query (a module), so
// this lists and deletes.
func (x *Index) DropAccount(ctx context.Context, account string) error {
	if err := x.Refresh(ctx); err != nil {
		return err
	}
	w := &waiter{}
	err := x.ids(ctx, account, nil, func(id string) error {
		return x.add(ctx, w, "delete", id, account, 0, nil)
	})
	if err != nil {
		return err
	}
	if err := x.add(ctx, w, "delete", indexer.CheckpointID(account), account, 0, nil); err != nil {
		return err
	}
	w.wg.Wait()
	if w.err != nil {
		return w.err
	}
	return x.Refresh(ctx)
}

// Search runs q filtered by account and mailbox. The account's checkpoint
// document is read by the same request, in the same shard-level snapshot,
// so the documents matched are at least as new as the checkpoint.
//
// IMAP SEARCH wants every matching UID, and a frequent word matches a good
// part of a mailbox: returning tens of thousands of hits costs seconds in
// the fetch phase. So the UIDs come back from a Painless scripted_metric
// aggregation as one delta/varint-encoded string instead (ADR 0008); a
// cluster that refuses the script is searched by paging through hits.
func (x *Index) Search(ctx context.Context, account string, mailbox uint32, q indexer.Query) ([]uint32, uint64, error) {
	if !x.noScripts.Load() {
		uids, cp, err := x.searchAgg(ctx, account, mailbox, q)
		if !errors.Is(err, errScriptRefused) {
			return uids, cp, err
		}
		x.noScripts.Store(true)
		slog.Warn("opensearch: the cluster refused the Painless UID-set aggregation; searching by paging through hits (slower for frequent words)", "err", err)
	}
	return x.searchHits(ctx, account, mailbox, q)
}

// scriptLang is the language of uidSetScript (tests change it to make the
// cluster refuse the script).
var scriptLang = "painless"

// uidSetScript collects the uid doc values of the matching documents and
// returns them sorted, as base64 of varint-encoded gaps (LEB128).
func uidSetScript() map[string]any {
	return map[string]any{
		"init_script":    map[string]any{"lang": scriptLang, "source": "state.u = new ArrayList()"},
		"map_script":     map[string]any{"lang": scriptLang, "source": "state.u.add(doc['uid'].value)"},
		"combine_script": map[string]any{"lang": scriptLang, "source": combineScript},
		"reduce_script":  map[string]any{"lang": scriptLang, "source": "return states"},
	}
}

const combineScript = `
List u = state.u;
Collections.sort(u);
int len = 0; long prev = 0;
for (long v : u) {
  long d = v - prev; prev = v;
  len++;
  while (d >= 128) { len++; d = d >>> 7; }
}
byte[] out = new byte[len];
int p = 0; prev = 0;
for (long v : u) {
  long d = v - prev; prev = v;
  while (d >= 128) { out[p] = (byte)((d & 127) | 128); p++; d = d >>> 7; }
  out[p] = (byte)d; p++;
}
return Base64.getEncoder().encodeToString(out);`

var errScriptRefused = errors.New("opensearch: script refused")

// emailsQuery matches the email documents of mailbox that match q (the
// account filter and routing are added by the caller).
func emailsQuery(mailbox uint32, q indexer.Query) map[string]any {
	return map[string]any{"bool": map[string]any{"filter": []any{
		term("kind", indexer.KindEmail), term("mailbox", mailbox), Query(q)}}}
}

// checkpointOf reads the checkpoint from a search hit that is the
// account's checkpoint document.
func checkpointOf(h hit, account string) (uint64, bool) {
	if h.ID != indexer.CheckpointID(account) {
		return 0, false
	}
	m, _ := first(h.Fields["modseq"]).(float64)
	return uint64(m), true
}

func (x *Index) searchAgg(ctx context.Context, account string, mailbox uint32, q indexer.Query) ([]uint32, uint64, error) {
	emails := emailsQuery(mailbox, q)
	body := map[string]any{
		"size": 1, "_source": false, "track_total_hits": false,
		"query": map[string]any{"bool": map[string]any{
			"filter": []any{term("account", account)},
			"should": []any{emails, term("kind", indexer.KindCheckpoint)}, "minimum_should_match": 1}},
		"post_filter":     term("kind", indexer.KindCheckpoint),
		"docvalue_fields": []string{"modseq"},
		"aggs": map[string]any{"m": map[string]any{
			"filter": term("kind", indexer.KindEmail),
			"aggs":   map[string]any{"u": map[string]any{"scripted_metric": uidSetScript()}},
		}},
	}
	var r struct {
		Hits struct {
			Hits []hit `json:"hits"`
		} `json:"hits"`
		Aggregations struct {
			M struct {
				DocCount int `json:"doc_count"`
				U        struct {
					Value []string `json:"value"`
				} `json:"u"`
			} `json:"m"`
		} `json:"aggregations"`
	}
	path := "/" + x.read + "/_search?filter_path=hits.hits._id,hits.hits.fields,aggregations.m.doc_count,aggregations.m.u.value&routing=" + url.QueryEscape(account)
	st, err := x.do(ctx, "POST", path, body, &r)
	if err != nil {
		if st == http.StatusBadRequest && strings.Contains(err.Error(), "script") {
			return nil, 0, fmt.Errorf("%w: %v", errScriptRefused, err)
		}
		return nil, 0, err
	}
	var cp uint64
	for _, h := range r.Hits.Hits {
		if m, ok := checkpointOf(h, account); ok {
			cp = m
		}
	}
	uids := make([]uint32, 0, r.Aggregations.M.DocCount)
	for _, enc := range r.Aggregations.M.U.Value {
		if uids, err = decodeUIDSet(uids, enc); err != nil {
			return nil, 0, err
		}
	}
	if len(uids) != r.Aggregations.M.DocCount {
		return nil, 0, fmt.Errorf("opensearch: UID set has %d entries for %d documents", len(uids), r.Aggregations.M.DocCount)
	}
	if len(r.Aggregations.M.U.Value) > 1 { // several shards: merge
		slices.Sort(uids)
	}
	return uids, cp, nil
}

// decodeUIDSet appends the UIDs of one uidSetScript result to dst.
func decodeUIDSet(dst []uint32, enc string) ([]uint32, error) {
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("opensearch: UID set: %w", err)
	}
	var prev uint64
	for i := 0; len(b) > 0; i++ {
		d, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("opensearch: UID set: bad varint")
		}
		b = b[n:]
		if d > math.MaxUint32-prev {
			return nil, errors.New("opensearch: UID set: UID out of range")
		}
		if d == 0 && i > 0 {
			return nil, errors.New("opensearch: UID set: UID repeated")
		}
		prev += d
		dst = append(dst, uint32(prev))
	}
	return dst, nil
}

// searchHits pages through the hits (sorted by kind, so the checkpoint
// comes first, then by uid).
func (x *Index) searchHits(ctx context.Context, account string, mailbox uint32, q indexer.Query) ([]uint32, uint64, error) {
	emails := emailsQuery(mailbox, q)
	var uids []uint32
	var cp uint64
	var after []any
	for {
		should := []any{emails}
		if after == nil {
			should = append(should, term("kind", indexer.KindCheckpoint))
		}
		body := map[string]any{"size": page, "_source": false, "track_total_hits": false,
			"query": map[string]any{"bool": map[string]any{
				"filter": []any{term("account", account)}, "should": should, "minimum_should_match": 1}},
			"docvalue_fields": []string{"modseq"},
			"sort":            []any{map[string]any{"kind": "asc"}, map[string]any{"uid": map[string]any{"order": "asc", "missing": "_first"}}}}
		if after != nil {
			body["search_after"] = after
		}
		var r searchResp
		path := "/" + x.read + "/_search?filter_path=hits.hits._id,hits.hits.sort,hits.hits.fields&routing=" + url.QueryEscape(account)
		if _, err := x.do(ctx, "POST", path, body, &r); err != nil {
			return nil, 0, err
		}
		for _, h := range r.Hits.Hits {
			if m, ok := checkpointOf(h, account); ok {
				cp = m
				continue
			}
			if u, ok := indexer.ParseUID(h.ID); ok {
				uids = append(uids, u)
			}
		}
		if len(r.Hits.Hits) < page {
			break
		}
		after = r.Hits.Hits[len(r.Hits.Hits)-1].Sort
	}
	slices.Sort(uids)
	return uids, cp, nil
}

func term(field string, v any) map[string]any {
	return map[string]any{"term": map[string]any{field: v}}
}

var matchAll = map[string]any{"match_all": map[string]any{}}
var matchNone = map[string]any{"match_none": map[string]any{}}

// Query translates q into the query DSL. Client values only appear,
// analysed into terms, as the "query" of match_phrase on a whitespace-
// analysed field, or as the value of a term query, serialised by
// encoding/json: never as query-string syntax.
func Query(q indexer.Query) map[string]any {
	switch q.Op {
	case indexer.OpAnd:
		if len(q.Children) == 0 {
			return matchAll
		}
		var cs []any
		for _, c := range q.Children {
			cs = append(cs, Query(c))
		}
		return map[string]any{"bool": map[string]any{"filter": cs}}
	case indexer.OpOr:
		if len(q.Children) == 0 {
			return matchNone
		}
		var cs []any
		for _, c := range q.Children {
			cs = append(cs, Query(c))
		}
		return map[string]any{"bool": map[string]any{"should": cs, "minimum_should_match": 1}}
	case indexer.OpNot:
		if len(q.Children) != 1 {
			return matchNone
		}
		return map[string]any{"bool": map[string]any{"must_not": []any{Query(q.Children[0])}}}
	case indexer.OpHeader:
		if q.Value == "" {
			return term("header_names", strings.ToLower(q.Name))
		}
		ts := indexer.HeaderQueryTerms(q.Name, q.Value)
		if len(ts) == 0 {
			return matchNone
		}
		return phrase("t_header_terms", strings.Join(ts, " "))
	}
	if q.Value == "" {
		return matchAll
	}
	ts := indexer.Analyze(q.Value)
	if len(ts) == 0 {
		return matchNone
	}
	v := strings.Join(ts, " ")
	fs := q.Op.Fields()
	if len(fs) == 1 {
		return phrase("t_"+fs[0], v)
	}
	var cs []any
	for _, f := range fs {
		cs = append(cs, phrase("t_"+f, v))
	}
	return map[string]any{"bool": map[string]any{"should": cs, "minimum_should_match": 1}}
}

func phrase(field, v string) map[string]any {
	return map[string]any{"match_phrase": map[string]any{field: map[string]any{"query": v}}}
}

// ErrNoIndex is returned when the aliases point nowhere.
var ErrNoIndex = errors.New("opensearch: no index behind the aliases")
