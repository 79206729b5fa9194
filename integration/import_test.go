package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stoa import adds only what is not there yet: after the source gained and
// lost messages, from a copy at another path, and with two identical
// messages in one source; nothing imported earlier comes twice.
func TestImportAgainAfterChanges(t *testing.T) {
	s := imapServer(t, true)
	dir := t.TempDir()
	msg := func(n int) string {
		return fmt.Sprintf("From sender@example.org Mon Jan  2 15:04:05 2026\nFrom: sender@example.org\nSubject: import %d\nMessage-ID: <imp%d@example.org>\n\nbody %d\n\n", n, n, n)
	}
	write := func(name string, ns ...int) string {
		var b strings.Builder
		for _, n := range ns {
			b.WriteString(msg(n))
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	imp := func(path, want string) {
		t.Helper()
		out, err := s.Stoa("import", "--account", "alice@example.test", "--quiet", path)
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("import %s: %v\n%s(want %q)", filepath.Base(path), err, out, want)
		}
	}
	p := write("a.mbox", 1, 2, 3)
	imp(p, "imported 3 messages (0 already there")
	imp(p, "imported 0 messages (3 already there")
	write("a.mbox", 2, 3, 4) // 1 removed, 4 added
	imp(p, "imported 1 messages (2 already there")
	imp(write("copy.mbox", 1, 2, 3, 4), "imported 0 messages (4 already there")
	imp(write("twins.mbox", 5, 5), "imported 2 messages (0 already there")
	imp(write("twins-again.mbox", 5, 5, 5), "imported 1 messages (2 already there")

	r := login(t, s, "alice@example.test", "alicepw")
	lines := r.ok("S", "STATUS INBOX (MESSAGES)")
	if !has(lines, "(MESSAGES 7)") {
		t.Fatalf("INBOX after the imports (1-4 once, 5 three times): %v", lines)
	}
	for n, want := range map[int]int{1: 1, 2: 1, 3: 1, 4: 1, 5: 3} {
		r.ok("E", "EXAMINE INBOX")
		got := r.ok("Q", fmt.Sprintf("UID SEARCH HEADER Message-ID <imp%d@example.org>", n))
		for _, l := range got {
			if strings.HasPrefix(l, "* SEARCH") && len(strings.Fields(l))-2 != want {
				t.Errorf("message %d: %s, want %d copies", n, l, want)
			}
		}
	}
}
