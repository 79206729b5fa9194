package mailmeta

import (
	"regexp"
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

// origMessageID finds Message-ID fields anywhere in a message (the last one
// of a bounce is usually that of the mail it returns).
var origMessageID = regexp.MustCompile(`(?im)^Message-ID:\s*(<[^>\s]+>)`)

// A bounce is found by the Message-ID of the mail it returns: the enclosed
// header is body text (RFC 9051 §6.4.4). Before it was extracted, 245 of
// the 479 corpus bounces quoting an original Message-ID had it in their
// text (those with text/rfc822-headers parts); the others had it only in
// a message/rfc822 part's header.
func TestCorpusBouncesQuoteOriginalMessageID(t *testing.T) {
	n, found := 0, 0
	for _, cm := range corpus.All(t) {
		if !strings.Contains(cm.Name, "bounce") {
			continue
		}
		ids := origMessageID.FindAllStringSubmatch(string(cm.Raw), -1)
		if len(ids) < 2 {
			continue
		}
		orig := ids[len(ids)-1][1]
		if m := Parse(cm.Raw, DefaultLimits()); strings.Contains(m.MessageID, strings.Trim(orig, "<>")) {
			continue // the bounce's own Message-ID
		}
		n++
		tx := ExtractText(cm.Raw, DefaultLimits(), DefaultMaxText)
		if strings.Contains(tx.Plain+tx.HTML, orig) {
			found++
		}
	}
	t.Logf("corpus bounces quoting an original Message-ID: %d; with it in the extracted text: %d", n, found)
	if n < 400 || found < n*95/100 {
		t.Fatalf("%d of %d bounces have the original Message-ID in their text", found, n)
	}
}
