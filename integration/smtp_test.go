package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stoa-mail/stoa/frontend/smtp/testdns"
	"github.com/stoa-mail/stoa/integration/harness"
	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/embedded"
)

// swaks returns the swaks path or skips (fails under CI=true).
func swaks(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("swaks")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("swaks not installed")
		}
		t.Skip("swaks not installed")
	}
	return p
}

// startSMTP runs stoa with the smtp role only and a test DNS server that
// publishes SPF for remote.example (so sender checks never leave the host).
func startSMTP(t *testing.T, env ...string) *harness.Server {
	t.Helper()
	dns, err := testdns.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Close() })
	dns.SetTXT("remote.example", "v=spf1 ip4:127.0.0.1 -all")
	return harness.Start(t, harness.Options{
		Roles:    []string{"smtp"},
		Accounts: map[string]string{"alice@example.test": "alice-pw", "bob@example.test": "bob-pw"},
		Env:      append([]string{"STOA_SMTP_DNS_RESOLVER=" + dns.Addr}, env...),
	})
}

// openStore opens the embedded store of a stopped server.
func openStore(t *testing.T, s *harness.Server) *storage.Store {
	t.Helper()
	s.Stop()
	eng, err := embedded.Open(filepath.Join(s.DataDir, "db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := storage.New(eng, storage.Config{})
	t.Cleanup(func() { st.Close() })
	return st
}

// inbox returns the raw messages of a mailbox with the given role.
func inbox(t *testing.T, st *storage.Store, login, role string) []string {
	t.Helper()
	ctx := context.Background()
	a, err := st.AccountByAddress(ctx, login)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := st.MailboxByRole(ctx, a.ID, role)
	if err != nil {
		t.Fatal(err)
	}
	es, err := st.Emails(ctx, a.ID, mb.ID, 1, ^uint32(0), 100000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		b, err := st.Blob(ctx, e.BlobID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	if strings.HasSuffix(name, "swaks") && !contains(args, "--helo") {
		// Without --helo, swaks looks up this host's name (slow offline).
		args = append(args, "--helo", "client.example")
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

func TestSMTPSwaks(t *testing.T) {
	sw := swaks(t)
	s := startSMTP(t)
	// Inbound MX.
	if out, err := run(t, sw, "--server", s.Addr["smtp"], "--helo", "mail.remote.example", "--local-interface", "127.0.0.1", "--from", "carol@remote.example",
		"--to", "alice@example.test", "--header", "Subject: via swaks MX", "--body", "hello from swaks"); err != nil {
		t.Fatalf("swaks MX: %v\n%s", err, out)
	}
	// Relay attempt on MX.
	out, err := run(t, sw, "--server", s.Addr["smtp"], "--from", "carol@remote.example", "--to", "victim@elsewhere.example")
	if err == nil || !strings.Contains(out, "550 5.7.1") {
		t.Errorf("relay not refused: %v\n%s", err, out)
	}
	// AUTH on MX is refused even with TLS.
	out, err = run(t, sw, "--server", s.Addr["smtp"], "-tls", "--auth", "PLAIN", "--auth-user", "alice@example.test",
		"--auth-password", "alice-pw", "--from", "alice@example.test", "--to", "victim@elsewhere.example")
	if err == nil || strings.Contains(out, "235 ") {
		t.Errorf("MX accepted AUTH: %v\n%s", err, out)
	}
	// Submission: STARTTLS + AUTH PLAIN, to a local and a remote recipient.
	if out, err := run(t, sw, "--server", s.Addr["submission"], "-tls", "--auth", "PLAIN", "--auth-user", "alice@example.test",
		"--auth-password", "alice-pw", "--from", "alice@example.test", "--to", "bob@example.test,dave@remote.example",
		"--header", "Subject: submitted"); err != nil {
		t.Fatalf("swaks submission: %v\n%s", err, out)
	}
	// Implicit TLS (465) with AUTH LOGIN.
	if out, err := run(t, sw, "--server", s.Addr["submissions"], "--tls-on-connect", "--auth", "LOGIN", "--auth-user", "bob@example.test",
		"--auth-password", "bob-pw", "--from", "bob@example.test", "--to", "alice@example.test", "--header", "Subject: over 465"); err != nil {
		t.Fatalf("swaks submissions: %v\n%s", err, out)
	}
	// Sending as someone else.
	out, err = run(t, sw, "--server", s.Addr["submission"], "-tls", "--auth", "PLAIN", "--auth-user", "bob@example.test",
		"--auth-password", "bob-pw", "--from", "alice@example.test", "--to", "alice@example.test")
	if err == nil || !strings.Contains(out, "553 5.7.1") {
		t.Errorf("forged sender accepted: %v\n%s", err, out)
	}

	st := openStore(t, s)
	a := inbox(t, st, "alice@example.test", storage.RoleInbox)
	b := inbox(t, st, "bob@example.test", storage.RoleInbox)
	if len(a) != 2 || len(b) != 1 {
		t.Fatalf("alice %d, bob %d messages", len(a), len(b))
	}
	if !strings.Contains(a[0], "Subject: via swaks MX") || !strings.Contains(a[0], "Authentication-Results: mx.stoa.test;") ||
		!strings.Contains(a[0], "spf=pass") || !strings.HasPrefix(a[0], "Received: from mail.remote.example") {
		t.Errorf("MX message:\n%s", a[0])
	}
	if !strings.Contains(b[0], "Subject: submitted") || !strings.Contains(b[0], "with ESMTPSA") || strings.Contains(b[0], "Authentication-Results") {
		t.Errorf("submitted message:\n%s", b[0])
	}
	if !strings.Contains(a[1], "Subject: over 465") {
		t.Errorf("465 message:\n%s", a[1])
	}
	q, err := st.Queue(context.Background(), 0)
	if err != nil || len(q) != 1 || len(q[0].Recipients) != 1 || q[0].Recipients[0].Address != "dave@remote.example" {
		t.Errorf("queue: %v %+v", err, q)
	}
}

const pySMTP = `
import smtplib, ssl, sys
mx, sub, lmtp_addr = sys.argv[1], sys.argv[2], sys.argv[3]
def hp(a):
    h, p = a.rsplit(":", 1)
    return h, int(p)
msg = "From: Carol <carol@remote.example>\r\nTo: alice@example.test\r\nSubject: python mx\r\n\r\nbody\r\n"
with smtplib.SMTP(*hp(mx)) as s:
    s.ehlo("mail.remote.example")
    assert s.has_extn("chunking") and s.has_extn("smtputf8") and not s.has_extn("auth")
    refused = s.sendmail("carol@remote.example", ["alice@example.test", "bob@example.test"], msg)
    assert not refused, refused
    try:
        s.sendmail("carol@remote.example", ["nobody@example.test"], msg)
        raise SystemExit("unknown user accepted")
    except smtplib.SMTPRecipientsRefused as e:
        assert e.recipients["nobody@example.test"][0] == 550, e.recipients
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP(*hp(sub)) as s:
    s.starttls(context=ctx)
    s.login("alice@example.test", "alice-pw")
    s.sendmail("alice@example.test", ["bob@example.test"], "From: alice@example.test\r\nSubject: python sub\r\n\r\nhi\r\n")
with smtplib.LMTP(*hp(lmtp_addr)) as s:
    # smtplib reads one reply after DATA; LMTP sends one per recipient
    # (RFC 2033 §4.2), so the second is read by hand.
    s.ehlo_or_helo_if_needed()
    assert s.mail("mta@remote.example")[0] == 250
    assert s.rcpt("alice@example.test")[0] == 250
    assert s.rcpt("bob@example.test")[0] == 250
    assert s.data("Subject: python lmtp\r\n\r\nx\r\n")[0] == 250
    assert s.getreply()[0] == 250
print("ok")
`

func TestSMTPPython(t *testing.T) {
	py := harness.Python(t)
	s := startSMTP(t)
	out, err := run(t, py, "-c", pySMTP, s.Addr["smtp"], s.Addr["submission"], s.Addr["lmtp"])
	if err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("python: %v\n%s", err, out)
	}
	st := openStore(t, s)
	a := inbox(t, st, "alice@example.test", storage.RoleInbox)
	b := inbox(t, st, "bob@example.test", storage.RoleInbox)
	if len(a) != 2 || len(b) != 3 {
		t.Fatalf("alice %d, bob %d", len(a), len(b))
	}
	if !strings.Contains(b[1], "Subject: python sub") || !strings.Contains(b[1], "Message-ID: <") || !strings.Contains(b[1], "\r\nDate: ") {
		t.Errorf("submission did not add Message-ID/Date:\n%s", b[1])
	}
	// Never on relayed mail: MX and LMTP leave the header as it came.
	for _, m := range []string{a[0], a[1]} {
		if strings.Contains(m, "Message-ID:") || strings.Contains(m, "\r\nDate:") {
			t.Errorf("MX/LMTP message got Message-ID or Date added:\n%s", m)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
