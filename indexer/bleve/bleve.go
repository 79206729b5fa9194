// Package bleve is the embedded search back end: a Bleve index under
// data_dir/index, opened by one process (stoa serve), which runs both the
// indexer and the searches (ADR 0008).
package bleve

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"strings"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/registry"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/stoa-mail/stoa/indexer"
)

const (
	tokenizerName = "stoa"
	spaceTokName  = "stoa_space"
	analyzerName  = "stoa"
	spaceAnalyzer = "stoa_space"
)

func init() {
	registry.RegisterTokenizer(tokenizerName, func(map[string]interface{}, *registry.Cache) (analysis.Tokenizer, error) {
		return stoaTokenizer{}, nil
	})
	registry.RegisterTokenizer(spaceTokName, func(map[string]interface{}, *registry.Cache) (analysis.Tokenizer, error) {
		return spaceTokenizer{}, nil
	})
}

// stoaTokenizer is indexer.Tokenize: tokens come out folded.
type stoaTokenizer struct{}

func (stoaTokenizer) Tokenize(b []byte) analysis.TokenStream {
	sp := indexer.Tokenize(string(b))
	out := make(analysis.TokenStream, len(sp))
	for i, t := range sp {
		out[i] = &analysis.Token{Term: []byte(t.Term), Start: t.Start, End: t.End, Position: i + 1, Type: analysis.AlphaNumeric}
	}
	return out
}

// spaceTokenizer splits pre-analysed header terms.
type spaceTokenizer struct{}

func (spaceTokenizer) Tokenize(b []byte) analysis.TokenStream {
	var out analysis.TokenStream
	i, pos := 0, 0
	for i < len(b) {
		for i < len(b) && b[i] == ' ' {
			i++
		}
		j := i
		for j < len(b) && b[j] != ' ' {
			j++
		}
		if j > i {
			pos++
			out = append(out, &analysis.Token{Term: b[i:j], Start: i, End: j, Position: pos, Type: analysis.AlphaNumeric})
		}
		i = j
	}
	return out
}

// Mapping is the index mapping: the same fields as the OpenSearch mapping.
func Mapping() (mapping.IndexMapping, error) {
	im := bleve.NewIndexMapping()
	if err := im.AddCustomAnalyzer(analyzerName, map[string]interface{}{"type": custom.Name, "tokenizer": tokenizerName}); err != nil {
		return nil, err
	}
	if err := im.AddCustomAnalyzer(spaceAnalyzer, map[string]interface{}{"type": custom.Name, "tokenizer": spaceTokName}); err != nil {
		return nil, err
	}
	dm := bleve.NewDocumentStaticMapping()
	text := func(store bool) *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Analyzer = analyzerName
		f.IncludeTermVectors = true // phrase queries
		f.IncludeInAll = false
		f.Store = store
		f.DocValues = false
		return f
	}
	kw := func(store bool) *mapping.FieldMapping {
		f := bleve.NewKeywordFieldMapping()
		f.Analyzer = keyword.Name
		f.IncludeInAll = false
		f.Store = store
		f.DocValues = false
		return f
	}
	num := func(store bool) *mapping.FieldMapping {
		f := bleve.NewNumericFieldMapping()
		f.IncludeInAll = false
		f.Store = store
		f.DocValues = false
		return f
	}
	date := func() *mapping.FieldMapping {
		f := bleve.NewDateTimeFieldMapping()
		f.IncludeInAll = false
		f.Store = false
		f.DocValues = false
		return f
	}
	dm.AddFieldMappingsAt("kind", kw(false))
	dm.AddFieldMappingsAt("account", kw(true))
	dm.AddFieldMappingsAt("mailbox", num(false))
	dm.AddFieldMappingsAt("uid", num(false))
	dm.AddFieldMappingsAt("email_id", num(false))
	dm.AddFieldMappingsAt("thread_id", num(false))
	dm.AddFieldMappingsAt("modseq", num(true))
	dm.AddFieldMappingsAt("blob_id", kw(false))
	dm.AddFieldMappingsAt("subject", text(false))
	dm.AddFieldMappingsAt("message_id", kw(false))
	dm.AddFieldMappingsAt("date", date())
	dm.AddFieldMappingsAt("internal_date", date())
	dm.AddFieldMappingsAt("size", num(false))
	dm.AddFieldMappingsAt("flags", kw(false))
	for _, a := range []string{"from", "to", "cc", "bcc"} {
		dm.AddFieldMappingsAt(a, text(false))
		dm.AddFieldMappingsAt(a+"_name", text(false))
		dm.AddFieldMappingsAt(a+"_email", kw(false))
		dm.AddFieldMappingsAt(a+"_domain", kw(false))
	}
	dm.AddFieldMappingsAt("body", text(false))
	dm.AddFieldMappingsAt("html", text(false))
	dm.AddFieldMappingsAt("attachment_names", text(false))
	dm.AddFieldMappingsAt("attachment_types", kw(false))
	hdr := text(false)
	hdr.Analyzer = spaceAnalyzer
	dm.AddFieldMappingsAt("headers", text(false))
	dm.AddFieldMappingsAt("header_names", kw(false))
	dm.AddFieldMappingsAt("header_terms", hdr)
	im.DefaultMapping = dm
	im.DefaultAnalyzer = analyzerName
	im.StoreDynamic = false
	im.IndexDynamic = false
	im.DocValuesDynamic = false
	return im, nil
}

// Index is a Bleve back end.
type Index struct {
	idx bleve.Index
}

var _ indexer.Backend = (*Index)(nil)

// Open opens (or creates) the index at dir.
func Open(dir string) (*Index, error) {
	idx, err := bleve.Open(dir)
	if errors.Is(err, bleve.ErrorIndexPathDoesNotExist) {
		m, err := Mapping()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		_ = os.Remove(dir) // bleve wants to create it
		idx, err = bleve.New(dir, m)
		if err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	return &Index{idx: idx}, nil
}

// Close closes the index.
func (x *Index) Close() error { return x.idx.Close() }

func cpKey(account string) []byte { return []byte("cp/" + account) }

type cpDoc struct {
	Kind    string `json:"kind"`
	Account string `json:"account"`
	ModSeq  uint64 `json:"modseq"`
}

// Apply writes b in one Bleve batch: documents and checkpoint commit
// together. Versions are not checked: one process writes, and the
// indexer serialises writers of an account.
func (x *Index) Apply(ctx context.Context, account string, b *indexer.Batch) error {
	bt := x.idx.NewBatch()
	for _, mb := range b.DeleteMailboxes {
		err := x.ids(ctx, account, numEq("mailbox", mb), func(id string) error {
			bt.Delete(id)
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, d := range b.Deletes {
		bt.Delete(d.ID)
	}
	for _, d := range b.Docs {
		if err := bt.Index(indexer.DocID(account, d.Mailbox, d.UID), d); err != nil {
			return err
		}
	}
	if b.Checkpoint > 0 {
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], b.Checkpoint)
		bt.SetInternal(cpKey(account), v[:])
		if err := bt.Index(indexer.CheckpointID(account), cpDoc{Kind: indexer.KindCheckpoint, Account: account, ModSeq: b.Checkpoint}); err != nil {
			return err
		}
	}
	if bt.Size() == 0 {
		return nil
	}
	return x.idx.Batch(bt)
}

// Checkpoint returns the account's checkpoint.
func (x *Index) Checkpoint(ctx context.Context, account string) (uint64, error) {
	v, err := x.idx.GetInternal(cpKey(account))
	if err != nil || len(v) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

// Checkpoints lists every account's checkpoint.
func (x *Index) Checkpoints(ctx context.Context) (map[string]uint64, error) {
	out := map[string]uint64{}
	q := term("kind", indexer.KindCheckpoint)
	var after []string
	for {
		req := bleve.NewSearchRequestOptions(q, 10000, 0, false)
		req.Fields = []string{"account", "modseq"}
		req.SortBy([]string{"_id"})
		req.SearchAfter = after
		res, err := x.idx.SearchInContext(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, h := range res.Hits {
			a, _ := h.Fields["account"].(string)
			m, _ := h.Fields["modseq"].(float64)
			out[a] = uint64(m)
		}
		if len(res.Hits) < 10000 {
			return out, nil
		}
		after = []string{res.Hits[len(res.Hits)-1].ID}
	}
}

// DocIDs lists the account's email documents.
func (x *Index) DocIDs(ctx context.Context, account string, fn func(string) error) error {
	return x.ids(ctx, account, nil, fn)
}

func (x *Index) ids(ctx context.Context, account string, extra query.Query, fn func(string) error) error {
	qs := []query.Query{term("kind", indexer.KindEmail), term("account", account)}
	if extra != nil {
		qs = append(qs, extra)
	}
	var after []string
	for {
		req := bleve.NewSearchRequestOptions(bleve.NewConjunctionQuery(qs...), 10000, 0, false)
		req.SortBy([]string{"_id"})
		req.Score = "none"
		req.SearchAfter = after
		res, err := x.idx.SearchInContext(ctx, req)
		if err != nil {
			return err
		}
		for _, h := range res.Hits {
			if err := fn(h.ID); err != nil {
				return err
			}
		}
		if len(res.Hits) < 10000 {
			return nil
		}
		after = []string{res.Hits[len(res.Hits)-1].ID}
	}
}

// DropAccount deletes the account's documents and checkpoint.
func (x *Index) DropAccount(ctx context.Context, account string) error {
	var ids []string
	if err := x.DocIDs(ctx, account, func(id string) error { ids = append(ids, id); return nil }); err != nil {
		return err
	}
	for len(ids) > 0 {
		n := min(len(ids), 5000)
		bt := x.idx.NewBatch()
		for _, id := range ids[:n] {
			bt.Delete(id)
		}
		ids = ids[n:]
		if len(ids) == 0 {
			bt.Delete(indexer.CheckpointID(account))
			bt.DeleteInternal(cpKey(account))
		}
		if err := x.idx.Batch(bt); err != nil {
			return err
		}
	}
	bt := x.idx.NewBatch()
	bt.Delete(indexer.CheckpointID(account))
	bt.DeleteInternal(cpKey(account))
	return x.idx.Batch(bt)
}

// Search runs q filtered by account and mailbox. It walks the matching
// postings itself instead of going through a top-N collector: IMAP SEARCH
// wants every hit, unscored and unsorted, and a frequent word matches
// tens of thousands of messages (ADR 0008).
func (x *Index) Search(ctx context.Context, account string, mailbox uint32, q indexer.Query) (uids []uint32, cp uint64, err error) {
	cp, err = x.Checkpoint(ctx, account) // read before searching: results are at least this new
	if err != nil {
		return nil, 0, err
	}
	full := bleve.NewConjunctionQuery(term("kind", indexer.KindEmail), term("account", account),
		numEq("mailbox", mailbox), Query(q))
	adv, err := x.idx.Advanced()
	if err != nil {
		return nil, 0, err
	}
	r, err := adv.Reader()
	if err != nil {
		return nil, 0, err
	}
	defer func() {
		if cerr := r.Close(); err == nil {
			err = cerr
		}
	}()
	s, err := full.Searcher(ctx, r, x.idx.Mapping(), search.SearcherOptions{Score: "none"})
	if err != nil {
		return nil, 0, err
	}
	defer s.Close()
	sctx := &search.SearchContext{DocumentMatchPool: search.NewDocumentMatchPool(s.DocumentMatchPoolSize()+1, 0), IndexReader: r}
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, 0, err
			}
		}
		dm, err := s.Next(sctx)
		if err != nil {
			return nil, 0, err
		}
		if dm == nil {
			break
		}
		id, err := r.ExternalID(dm.IndexInternalID)
		sctx.DocumentMatchPool.Put(dm)
		if err != nil {
			return nil, 0, err
		}
		if u, ok := indexer.ParseUID(id); ok {
			uids = append(uids, u)
		}
	}
	slices.Sort(uids)
	return uids, cp, nil
}

func term(field, v string) query.Query {
	q := bleve.NewTermQuery(v)
	q.SetField(field)
	return q
}

func numEq(field string, v uint32) query.Query {
	f := float64(v)
	t := true
	q := bleve.NewNumericRangeInclusiveQuery(&f, &f, &t, &t)
	q.SetField(field)
	return q
}

// Query translates q; client values only become analysed terms.
func Query(q indexer.Query) query.Query {
	switch q.Op {
	case indexer.OpAnd:
		if len(q.Children) == 0 {
			return bleve.NewMatchAllQuery()
		}
		var cs []query.Query
		for _, c := range q.Children {
			cs = append(cs, Query(c))
		}
		return bleve.NewConjunctionQuery(cs...)
	case indexer.OpOr:
		if len(q.Children) == 0 {
			return bleve.NewMatchNoneQuery()
		}
		var cs []query.Query
		for _, c := range q.Children {
			cs = append(cs, Query(c))
		}
		return bleve.NewDisjunctionQuery(cs...)
	case indexer.OpNot:
		b := bleve.NewBooleanQuery()
		b.AddMust(bleve.NewMatchAllQuery())
		if len(q.Children) == 1 {
			b.AddMustNot(Query(q.Children[0]))
		}
		return b
	case indexer.OpHeader:
		if q.Value == "" {
			return term("header_names", strings.ToLower(q.Name))
		}
		return phrase([]string{"header_terms"}, indexer.HeaderQueryTerms(q.Name, q.Value))
	}
	if q.Value == "" {
		return bleve.NewMatchAllQuery()
	}
	return phrase(q.Op.Fields(), indexer.Analyze(q.Value))
}

func phrase(fields, terms []string) query.Query {
	if len(terms) == 0 || len(fields) == 0 {
		return bleve.NewMatchNoneQuery()
	}
	var ds []query.Query
	for _, f := range fields {
		if len(terms) == 1 {
			ds = append(ds, term(f, terms[0]))
			continue
		}
		ds = append(ds, bleve.NewPhraseQuery(terms, f))
	}
	if len(ds) == 1 {
		return ds[0]
	}
	return bleve.NewDisjunctionQuery(ds...)
}
