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
