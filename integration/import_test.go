package integration

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	imp(p, "imported 3 messages (0 already imported")
	imp(p, "imported 0 messages (3 already imported")
	write("a.mbox", 2, 3, 4) // 1 removed, 4 added
	imp(p, "imported 1 message (2 already imported")
	imp(write("copy.mbox", 1, 2, 3, 4), "imported 0 messages (4 already imported")
	imp(write("twins.mbox", 5, 5), "imported 2 messages (0 already imported")
	imp(write("twins-again.mbox", 5, 5, 5), "imported 1 message (2 already imported")

	// Read in a mail client since: only its Status: fields changed.
	read := strings.ReplaceAll(msg(4), "\nSubject:", "\nStatus: RO\nX-Status: A\nSubject:")
	if err := os.WriteFile(filepath.Join(dir, "read.mbox"), []byte(read), 0o644); err != nil {
		t.Fatal(err)
	}
	// Forwarded to the server from another directory, with a relative
	// path; the progress bar comes to the caller's stderr.
	stdout, stderr, err := s.StoaIn(dir, "import", "--account", "alice@example.test", "read.mbox")
	if err != nil || !strings.Contains(stdout, "imported 0 messages (1 already imported") || !strings.Contains(stderr, "msg/s") {
		t.Fatalf("import of a message read since, by relative path: %v\nstdout: %s\nstderr: %q", err, stdout, stderr)
	}

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

// stoa import and repair refuse what they cannot do instead of reporting
// success: a file that holds no mail, --mailbox with a Maildir (its folders
// keep their names), an account that does not exist.
func TestAdminCommandsRefuseBadInput(t *testing.T) {
	s := imapServer(t, true)
	dir := t.TempDir()
	notMail := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notMail, []byte("just some notes\nno mail here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	maildir := filepath.Join(dir, "Maildir")
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(maildir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "--account", "alice@example.test", notMail}, "no messages found"},
		{[]string{"import", "--account", "alice@example.test", "--mailbox", "Archive", maildir}, "--mailbox applies to an mbox file"},
		{[]string{"import", "--account", "nobody@example.test", notMail}, "nobody@example.test"},
		{[]string{"repair", "--account", "nobody@example.test"}, `no account "nobody@example.test"`},
		{[]string{"reindex", "--account", "nobody@example.test"}, `no account "nobody@example.test"`},
	} {
		out, err := s.Stoa(c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("stoa %s: err %v, output %q; want a failure saying %q", strings.Join(c.args, " "), err, out, c.want)
		}
	}
	if out, err := s.Stoa("repair", "--account", "alice@example.test", "--fix=false"); err != nil || !strings.Contains(out, "1 account checked, 0 problems found") {
		t.Errorf("repair of one account: %v %q", err, out)
	}
	// STOA_PASSWORD is the caller's, also when the server runs the command.
	add := exec.Command(s.Bin, "--config", s.Config, "account", "add", "carol@example.test")
	add.Env = append(append([]string{}, s.Env...), "STOA_PASSWORD=carol-pw")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("account add with STOA_PASSWORD: %v %s", err, out)
	}
	login(t, s, "carol@example.test", "carol-pw").ok("L", "NOOP")
	if out, err := s.Stoa("domain", "catch-all", "example.test", "alice@example.test"); err != nil || !strings.Contains(out, "goes to alice@example.test") {
		t.Errorf("domain catch-all: %v %q", err, out)
	}
	if out, err := s.Stoa("domain", "list"); err != nil || !strings.Contains(out, "example.test\tcatch-all → alice@example.test") {
		t.Errorf("domain list: %v %q", err, out)
	}
}

// Ctrl-C on a command the server runs for the CLI stops it there too.
func TestForwardedImportInterrupted(t *testing.T) {
	s := imapServer(t, true)
	var b strings.Builder
	const n = 30000
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "From x@example.org Mon Jan  2 15:04:05 2026\nFrom: x@example.org\nSubject: bulk %d\n\nbody %d\n\n", i, i)
	}
	p := filepath.Join(t.TempDir(), "big.mbox")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(s.Bin, "--config", s.Config, "import", "--account", "alice@example.test", p)
	cmd.Env = s.Env
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(stderr)
	if _, err := br.ReadString('/'); err != nil { // the first progress line ("… msg/s")
		t.Fatal(err)
	}
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { io.Copy(io.Discard, br); done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("interrupted import exited 0")
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the CLI ignored the interrupt")
	}
	r := login(t, s, "alice@example.test", "alicepw")
	time.Sleep(500 * time.Millisecond) // let the server's workers stop
	first := r.ok("S1", "STATUS INBOX (MESSAGES)")
	time.Sleep(time.Second)
	second := r.ok("S2", "STATUS INBOX (MESSAGES)")
	if fmt.Sprint(first) != fmt.Sprint(second) || has(first, fmt.Sprintf("(MESSAGES %d)", n)) {
		t.Fatalf("the server went on importing: %v then %v", first, second)
	}
}
