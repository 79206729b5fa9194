package indexer

import (
	"fmt"
	"strings"
	"testing"
)

func TestAnalyze(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Grüße aus MÜNCHEN", "grusse aus munchen"},
		{"Ærøskøbing façade naïve", "aeroskobing facade naive"},
		{"cafe\u0301 e\u0301te\u0301", "cafe ete"}, // decomposed marks
		{"bob@Example.COM, x-mailer: 3.14", "bob example com x mailer 3 14"},
		{"日本語のテキスト", "日 本 語 の テ キ ス ト"},
		{"ПРИВЕТ мир Ελληνικά", "привет мир ελληνικα"},
		{"!!! --- ...", ""},
		{strings.Repeat("a", 256) + " ok", "ok"},
	} {
		if got := strings.Join(Analyze(c.in), " "); got != c.want {
			t.Errorf("Analyze(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestMatchSemantics(t *testing.T) {
	d := &Doc{Subject: "Quarterly report", Body: "Invoice number 42 attached",
		From: []string{"Jürgen Müller <jurgen@example.de>"}, Headers: []string{"ABC-1234 open"},
		HeaderNames: []string{"x-ticket"}, HeaderTerms: []string{headerTerms("x-ticket", "ABC-1234 open")}}
	frozen, shared := NewMatcher(d).Freeze(), NewMatcher(d)
	for _, c := range []struct {
		q    Query
		want bool
	}{
		{Text("invoice number"), true},
		{Text("number invoice"), false}, // a phrase, in order
		{Body("voice"), false},          // words, not substrings (ADR 0008)
		{Subject("REPORT"), true},
		{From("muller"), true},
		{From("example.de"), true},
		{From("jurgen@example.de"), true},
		{Header("X-Ticket", "abc-1234"), true},
		{Header("X-Ticket", "report"), false},
		{Header("x-ticket", ""), true},
		{Header("x-other", ""), false},
		{Text(""), true},
		{Text("..."), false},
		{And(Subject("report"), Not(Body("42"))), false},
		{Or(Subject("nothing"), Body("attached")), true},
		{And(), true},
		{Or(), false},
	} {
		if got := Match(d, c.q); got != c.want {
			t.Errorf("Match(%s) = %v, want %v", fmt.Sprintf("%+v", c.q), got, c.want)
		}
		// One Matcher, frozen, answers every query like a fresh one.
		if got := frozen.Match(c.q); got != c.want {
			t.Errorf("frozen Matcher: Match(%s) = %v, want %v", fmt.Sprintf("%+v", c.q), got, c.want)
		}
		if got := shared.Match(c.q); got != c.want {
			t.Errorf("shared Matcher: Match(%s) = %v, want %v", fmt.Sprintf("%+v", c.q), got, c.want)
		}
	}
}

// The cache of analysed unindexed messages stays within its bound: when
// full it keeps what it has (a search over more than fits still hits the
// first part) until entries expire.
func TestMatcherCacheBound(t *testing.T) {
	var c matcherCache
	body := strings.Repeat("word ", 200_000) // about 4 MB analysed
	for i := 0; i < 40; i++ {
		c.put(fmt.Sprintf("blob%d", i), NewMatcher(&Doc{Body: body}).Freeze())
		if c.bytes > matcherCacheBytes {
			t.Fatalf("cache holds %d bytes after %d entries", c.bytes, i+1)
		}
	}
	if c.get("blob0") == nil || c.get("blob39") != nil {
		t.Fatal("a full cache keeps its entries and refuses new ones")
	}
	for i := range c.order {
		c.order[i].at = c.order[i].at.Add(-2 * matcherCacheTTL)
	}
	c.put("fresh", NewMatcher(&Doc{Body: "x"}).Freeze())
	if c.get("blob0") != nil || c.get("fresh") == nil {
		t.Fatal("expired entries go and make room")
	}
}

// The header text TEXT and HEADER search is decoded as SUBJECT's is: badly
// padded "B" words included (the index missed them while SUBJECT found them).
func TestDecodeHeaderLikeParser(t *testing.T) {
	for _, in := range []string{"=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4==?=", "=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4?=",
		"=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=", "=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=", "=?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?="} {
		if got := DecodeHeader(in); got != "Grüße aus Köln" {
			t.Errorf("DecodeHeader(%q) = %q", in, got)
		}
	}
}
