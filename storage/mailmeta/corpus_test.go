package mailmeta

import (
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stoa-mail/stoa/storage/mailmeta/corpus"
)

// parseCap is a hard bound: Parse must return within it for any corpus
// message. Timing is reported, not asserted, below that.
const parseCap = 10 * time.Second

func TestCorpus(t *testing.T) {
	msgs := corpus.All(t)
	if len(msgs) < 2000 {
		t.Fatalf("corpus has %d messages, expected the torture and real sets (~2460)", len(msgs))
	}
	type timing struct {
		name string
		d    time.Duration
		size int
	}
	var times []timing
	var total time.Duration
	var bytes int
	defects := map[string]int{}
	lim := DefaultLimits()
	for _, cm := range msgs {
		done := make(chan *Meta, 1)
		start := time.Now()
		go func(raw []byte) { done <- Parse(raw, lim) }(cm.Raw)
		var m *Meta
		select {
		case m = <-done:
		case <-time.After(parseCap):
			t.Fatalf("%s: Parse did not return within %v", cm.Name, parseCap)
		}
		d := time.Since(start)
		total += d
		bytes += len(cm.Raw)
		times = append(times, timing{cm.Name, d, len(cm.Raw)})
		if s := checkMeta(m, cm.Raw, lim); s != "" {
			t.Errorf("%s: %s", cm.Name, s)
			continue
		}
		for _, h := range m.Headers {
			if strings.EqualFold(h.Name, "message-id") && strings.TrimSpace(h.Value) != "" && m.MessageID == "" {
				t.Errorf("%s: Message-ID %q but MessageID empty", cm.Name, h.Value)
			}
		}
		for _, d := range m.Defects {
			if i := strings.Index(d, ": "); i >= 0 {
				d = d[i+2:]
			}
			if i := strings.Index(d, ": "); i >= 0 {
				d = d[:i]
			}
			defects[d]++
		}
		tx := ExtractText(cm.Raw, lim, 1<<20)
		if !utf8.ValidString(tx.Plain) || !utf8.ValidString(tx.HTML) || len(tx.Plain) > 1<<20 || len(tx.HTML) > 1<<20 {
			t.Errorf("%s: ExtractText output invalid or over cap", cm.Name)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].d > times[j].d })
	t.Logf("parsed %d messages, %d bytes in %v (mean %v/message)", len(msgs), bytes, total, total/time.Duration(len(msgs)))
	for _, x := range times[:5] {
		t.Logf("slowest: %v %s (%d bytes)", x.d, x.name, x.size)
	}
	var names []string
	for k := range defects {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		t.Logf("defect %q: %d", k, defects[k])
	}
}
