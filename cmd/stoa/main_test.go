package main

import (
	"bytes"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var o, e bytes.Buffer
	rc := run(args, &o, &e)
	return rc, o.String() + e.String()
}

// A mistyped key or a stray argument is refused, never ignored: `stoa serve`
// must not start on defaults the operator did not ask for.
func TestCLIRefusesUnknownKeysAndArguments(t *testing.T) {
	t.Setenv("STOA_SERVER_DATA_DIR", t.TempDir())
	for _, args := range [][]string{
		{"serve", "--imap.lsiten", "127.0.0.1:1"},
		{"config", "--imap.lsiten=127.0.0.1:1"},
		{"serve", "extra"},
		{"version", "extra"},
		{"config", "--bogus"},
	} {
		rc, out := runCLI(t, args...)
		if rc == 0 {
			t.Errorf("stoa %s: exit 0, output %q", strings.Join(args, " "), out)
		}
	}
	// Values and arguments after -- are the command's, dots or not.
	for _, args := range [][]string{
		{"account", "list", "--", "--imap.lsiten"},
		{"config", "--", "-x"},
	} {
		if _, out := runCLI(t, args...); strings.Contains(out, "unknown configuration key") {
			t.Errorf("stoa %s: %q", strings.Join(args, " "), out)
		}
	}
	if rc, out := runCLI(t, "serve", "--help"); rc != 0 || strings.Contains(out, "is running") {
		t.Errorf("serve --help: rc %d, %q", rc, out)
	}
}

// stoa config does not print passwords unless asked to.
func TestConfigHidesSecrets(t *testing.T) {
	t.Setenv("STOA_CASSANDRA_PASSWORD", "hunter2")
	t.Setenv("STOA_INDEX_OPENSEARCH_URL", "https://admin:s3cret@search.example:9200")
	rc, out := runCLI(t, "config")
	if rc != 0 || strings.Contains(out, "hunter2") || strings.Contains(out, "s3cret") || !strings.Contains(out, "password is set") {
		t.Fatalf("stoa config: rc %d\n%s", rc, out)
	}
	if rc, out := runCLI(t, "config", "--show-secrets"); rc != 0 || !strings.Contains(out, `"hunter2"`) || !strings.Contains(out, "s3cret") {
		t.Fatalf("stoa config --show-secrets: rc %d\n%s", rc, out)
	}
}

// From a fresh-user walk-through: `stoa help CMD` is CMD's help, a bad flag
// value is reported once, and reindex refuses a negative rate.
func TestCLIHelpAndFlagErrors(t *testing.T) {
	t.Setenv("STOA_SERVER_DATA_DIR", t.TempDir())
	if rc, out := runCLI(t, "help", "import"); rc != 0 || !strings.Contains(out, "-mailbox") {
		t.Errorf("help import: rc %d, %q", rc, out)
	}
	rc, out := runCLI(t, "reindex", "--rate", "abc")
	if rc != 2 || strings.Count(out, `invalid value "abc"`) != 1 {
		t.Errorf("reindex --rate abc: rc %d, %q (want the error once)", rc, out)
	}
	if rc, out := runCLI(t, "reindex", "--rate", "-5"); rc == 0 || !strings.Contains(out, "--rate -5") {
		t.Errorf("reindex --rate -5: rc %d, %q", rc, out)
	}
}

func TestRedactArgs(t *testing.T) {
	got := strings.Join(redactArgs([]string{"add", "a@b", "--password", "hunter2", "--quota-bytes", "5", "-password=x", "--app-password=y", "--mailbox", "password"}), " ")
	if want := "add a@b --password *** --quota-bytes 5 -password=*** --app-password=*** --mailbox password"; got != want {
		t.Fatalf("redactArgs: %q, want %q", got, want)
	}
}
