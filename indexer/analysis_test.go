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
	}
}

// FuzzAnalyze: any input (invalid UTF-8 included) tokenizes without a
// panic, spans lie inside the input, terms are non-empty and folded (a
// second Analyze changes nothing), and a message containing the input is
// found by searching for it (the phrase of its own terms).
func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{"Grüße aus MÜNCHEN", "日本語のテキスト", "a\xffb", "cafe\u0301", "x-mailer: 3.14", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, sp := range Tokenize(s) {
			if sp.Start < 0 || sp.End > len(s) || sp.Start >= sp.End || sp.Term == "" {
				t.Fatalf("span %+v outside %q", sp, s)
			}
		}
		terms := Analyze(s)
		for _, term := range terms {
			if again := Analyze(term); len(again) != 1 || again[0] != term {
				t.Fatalf("term %q of %q re-analyses to %q", term, s, again)
			}
		}
		if len(terms) > 0 && !Match(&Doc{Body: s}, Body(s)) {
			t.Fatalf("a body %q is not found by BODY of itself (terms %q)", s, terms)
		}
	})
}
