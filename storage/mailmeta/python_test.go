package mailmeta

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stoa-mail/stoa/storage/mailmeta/corpus"
)

// pyView is one line of testdata/pyenvelope.py output.
type pyView struct {
	File      string      `json:"file"`
	Error     string      `json:"error"`
	Tree      [][2]string `json:"tree"`
	Subject   *string     `json:"subject"`
	From      [][2]string `json:"from"`
	FromError string      `json:"from_error"`
	MessageID string      `json:"message_id"`
}

// goTree lists the parts as pyenvelope.py does: [section, type] in IMAP
// order, an enclosed message carrying its message/rfc822 part's section.
func goTree(p *Part, section string, out [][2]string) [][2]string {
	out = append(out, [2]string{section, p.Type + "/" + p.Subtype})
	for i, c := range p.Children {
		out = goTree(c, childSection(section, i+1), out)
	}
	if p.Message != nil {
		out = goTree(p.Message, section, out)
	}
	return out
}

// pyStride picks the deterministic sample: every 12th corpus message by
// name (about 200); MAILMETA_PY_STRIDE overrides it.
const pyStride = 12

// Documented differences from Python's email package, counted apart from
// real disagreements:
//
//   - degradedMultipart: a multipart with no boundary parameter or no
//     delimiter line. Python keeps its multipart/* type with no children;
//     we read it as text/plain (RFC 2045 §5.2) so that BODYSTRUCTURE stays
//     valid (1*body).
//   - commentName: "a@b (Name)". Python's default policy gives no display
//     name; we use the comment, as compat32's getaddresses and most MUAs do.
//   - pythonFromError: Python's header parser raised on From; we still
//     return our best-effort addresses.
//   - rfc2047Decoding: same addresses, names differ by RFC 2047 rules:
//     Python keeps a space between adjacent encoded words that RFC 2047 §6.2
//     says to drop, and leaves an encoded word glued inside a quoted word
//     undecoded where we (like common MUAs) decode it.
//   - nullAddress: "<>" (a null reverse-path in bounces); Python reports the
//     addr-spec "<>", we report an empty address or none.
//   - typeTrailingJunk: "application/pdf name=x" (missing ";") or
//     "text/plain>"; Python makes the whole string the type, we read the
//     RFC 2045 §5.1 token and then the parameters.
//   - foldedBoundary: boundary="a<CRLF> b". Python reads parameters from the
//     folded value, so no line matches; we unfold first (RFC 5322 §2.2.3).
//   - boundaryTrailingSpace: a boundary ending in space, which RFC 2046
//     §5.1.1 forbids (bcharsnospace). Python strips it, so a line without
//     the space matches; we compare the boundary as given.
//   - partLimit: we stop at MaxParts.
//   - unquotedAt: "a@b <c@d>" or "Big Bug bb@bug.com". Python drops or
//     misplaces the unquoted display name; we keep name and address.
//   - nameWhitespace: a quoted display name with outer spaces, which we trim.
//   - obsColon: "From  : x" (RFC 5322 §4.5 obs-optional WSP before the
//     colon). Python does not see the field (and ends the header there);
//     we read it.
func TestPythonCrossCheck(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 not found and CI=true")
		}
		t.Skip("python3 not found")
	}
	msgs := corpus.All(t)
	dir := t.TempDir()
	var sample []corpus.Message
	var paths []string
	stride := pyStride
	if v, err := strconv.Atoi(os.Getenv("MAILMETA_PY_STRIDE")); err == nil && v > 0 {
		stride = v // e.g. 1 to compare the whole corpus
	}
	for i := 0; i < len(msgs); i += stride {
		p := filepath.Join(dir, fmt.Sprintf("%04d.eml", len(sample)))
		if err := os.WriteFile(p, msgs[i].Raw, 0o600); err != nil {
			t.Fatal(err)
		}
		sample = append(sample, msgs[i])
		paths = append(paths, p)
	}
	cmd := exec.Command(py, append([]string{"testdata/pyenvelope.py"}, paths...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pyenvelope.py: %v\n%s", err, stderr.String())
	}
	var views []pyView
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var v pyView
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("bad python output: %v", err)
		}
		views = append(views, v)
	}
	if len(views) != len(sample) {
		t.Fatalf("python printed %d results for %d files", len(views), len(sample))
	}

	var treeAgree, fromAgree, subjAgree, midAgree int
	exceptions := map[string]int{}
	var disagreements []string
	for i, cm := range sample {
		v := views[i]
		if v.Error != "" {
			t.Errorf("%s: python failed: %s", cm.Name, v.Error)
			continue
		}
		m := Parse(cm.Raw, DefaultLimits())

		// Type trees.
		gt := goTree(m.Body, "", nil)
		switch {
		case sameTree(gt, v.Tree):
			treeAgree++
		case degradedOnly(gt, v.Tree):
			exceptions["degradedMultipart"]++
		case typeTrailingJunk(gt, v.Tree):
			exceptions["typeTrailingJunk"]++
		case obsColon.Match(cm.Raw[:m.Body.BodyStart]):
			exceptions["obsColon"]++
		case foldedBoundary.Match(cm.Raw):
			exceptions["foldedBoundary"]++
		case boundaryTrailingSpace(m.Body):
			exceptions["boundaryTrailingSpace"]++
		case hasDefect(m, "part limit"):
			exceptions["partLimit"]++
		default:
			disagreements = append(disagreements, fmt.Sprintf("%s: tree\n  go: %v\n  py: %v\n  defects: %v", cm.Name, short(gt), short(v.Tree), m.Defects))
		}

		// From addresses (decoded names, addr-spec).
		var gf [][2]string
		for _, a := range m.From {
			gf = append(gf, [2]string{a.Name, a.Email})
		}
		switch {
		case sameAddrs(gf, v.From, false):
			fromAgree++
		case v.From == nil && v.FromError != "":
			exceptions["pythonFromError"]++
		case sameAddrs(gf, v.From, true) && rawFrom(m, "("):
			exceptions["commentName"]++
		case sameEmails(gf, v.From) && rawFrom(m, "=?"):
			exceptions["rfc2047Decoding"]++
		case nullAddress(gf, v.From):
			exceptions["nullAddress"]++
		case obsColon.Match(cm.Raw[:m.Body.BodyStart]):
			exceptions["obsColon"]++
		case rawFrom(m, "@") && unquotedAt(m):
			exceptions["unquotedAt"]++
		case sameTrimmed(gf, v.From):
			exceptions["nameWhitespace"]++
		default:
			disagreements = append(disagreements, fmt.Sprintf("%s: from\n  go: %q\n  py: %q (%s)", cm.Name, gf, v.From, v.FromError))
		}

		// Raw subject and Message-ID: reported, not asserted.
		if v.Subject == nil && m.Envelope.Subject == "" || v.Subject != nil && *v.Subject == m.Envelope.Subject {
			subjAgree++
		} else {
			t.Logf("%s: subject go %q py %q", cm.Name, m.Envelope.Subject, deref(v.Subject))
		}
		if v.MessageID == m.MessageID {
			midAgree++
		} else {
			t.Logf("%s: message-id go %q py %q", cm.Name, m.MessageID, v.MessageID)
		}
	}
	n := len(sample)
	pct := func(k int) float64 { return 100 * float64(k) / float64(n) }
	t.Logf("sample: %d messages (every %dth of %d)", n, stride, len(msgs))
	t.Logf("type tree agreement: %d/%d = %.1f%%", treeAgree, n, pct(treeAgree))
	t.Logf("From agreement:      %d/%d = %.1f%%", fromAgree, n, pct(fromAgree))
	t.Logf("raw Subject agreement: %d/%d = %.1f%%; Message-ID agreement: %d/%d = %.1f%%", subjAgree, n, pct(subjAgree), midAgree, n, pct(midAgree))
	for k, c := range exceptions {
		t.Logf("documented exception %s: %d", k, c)
	}
	for _, d := range disagreements {
		t.Logf("DISAGREEMENT %s", d)
	}
	// Agreement counting documented exceptions as explained.
	explained := func(agree int, keys ...string) float64 {
		for _, k := range keys {
			agree += exceptions[k]
		}
		return pct(agree)
	}
	if r := explained(treeAgree, "degradedMultipart", "typeTrailingJunk", "foldedBoundary", "boundaryTrailingSpace", "partLimit"); r < 97 {
		t.Errorf("type tree agreement %.1f%% (with documented exceptions) < 97%%", r)
	}
	if r := explained(fromAgree, "commentName", "pythonFromError", "rfc2047Decoding", "nullAddress", "obsColon", "unquotedAt", "nameWhitespace"); r < 97 {
		t.Errorf("From agreement %.1f%% (with documented exceptions) < 97%%", r)
	}
	// Raw agreement too, so that a regression cannot hide in an exception
	// class (on the default sample: trees 96.6%, From 91.7%).
	if pct(treeAgree) < 95 || pct(fromAgree) < 88 {
		t.Errorf("raw agreement fell: trees %.1f%%, From %.1f%%", pct(treeAgree), pct(fromAgree))
	}
	if len(disagreements) > n*3/100 {
		t.Errorf("%d unexplained disagreements (> 3%%)", len(disagreements))
	}
}

func deref(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}

func sameTree(a, b [][2]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// degradedOnly reports whether go and py differ only where Python keeps a
// childless multipart that we read as text/plain.
func degradedOnly(gt, pt [][2]string) bool {
	if len(gt) != len(pt) {
		return false
	}
	diff := false
	for i := range gt {
		if gt[i] == pt[i] {
			continue
		}
		childless := i+1 >= len(pt) || !strings.HasPrefix(pt[i+1][0], pt[i][0]) || pt[i+1][0] == pt[i][0] && pt[i][0] != ""
		if gt[i][0] != pt[i][0] || gt[i][1] != "text/plain" || !strings.HasPrefix(pt[i][1], "multipart/") || !childless {
			return false
		}
		diff = true
	}
	return diff
}

// sameAddrs compares address lists; looseName accepts our name where
// Python has none.
func sameAddrs(g, p [][2]string, looseName bool) bool {
	if len(g) != len(p) {
		return false
	}
	for i := range g {
		if g[i][1] != p[i][1] {
			return false
		}
		if g[i][0] != p[i][0] && !(looseName && p[i][0] == "") {
			return false
		}
	}
	return true
}

// rawFrom reports whether the raw From field contains sub.
func rawFrom(m *Meta, sub string) bool {
	for _, h := range m.Headers {
		if strings.EqualFold(h.Name, "from") {
			return strings.Contains(h.Value, sub)
		}
	}
	return false
}

func sameEmails(g, p [][2]string) bool {
	if len(g) != len(p) {
		return false
	}
	for i := range g {
		if g[i][1] != p[i][1] {
			return false
		}
	}
	return true
}

// nullAddress: the lists differ only where Python has addr-spec "<>".
func nullAddress(g, p [][2]string) bool {
	var pp [][2]string
	null := false
	for _, a := range p {
		if a[1] == "<>" {
			null = true
			if a[0] == "" {
				continue // we drop an all-empty address
			}
			a[1] = ""
		}
		pp = append(pp, a)
	}
	return null && sameAddrs(g, pp, false)
}

// typeTrailingJunk: the trees agree up to an entry where Python's type is
// ours followed by a character that cannot continue an RFC 2045 token
// (what follows differs as a consequence).
func typeTrailingJunk(gt, pt [][2]string) bool {
	for i := 0; i < len(gt) && i < len(pt); i++ {
		if gt[i] == pt[i] {
			continue
		}
		rest, ok := strings.CutPrefix(pt[i][1], gt[i][1])
		return gt[i][0] == pt[i][0] && ok && rest != "" && !isTokenChar(rest[0])
	}
	return false
}

var (
	foldedBoundary = regexp.MustCompile(`(?i)boundary\s*=\s*"[^"]*\n[ \t]`)
	obsColon       = regexp.MustCompile(`(?m)^[!-9;-~]+[ \t]+:`)
)

func boundaryTrailingSpace(p *Part) bool {
	if b, ok := paramGet(p.Params, "boundary"); ok && strings.HasSuffix(b, " ") {
		return true
	}
	for _, c := range p.Children {
		if boundaryTrailingSpace(c) {
			return true
		}
	}
	return p.Message != nil && boundaryTrailingSpace(p.Message)
}

func hasDefect(m *Meta, what string) bool {
	for _, d := range m.Defects {
		if strings.Contains(d, what) {
			return true
		}
	}
	return false
}

// unquotedAt: some decoded name holds an "@", or an unquoted phrase
// precedes an addr-spec without angle brackets.
func unquotedAt(m *Meta) bool {
	for _, a := range m.From {
		if strings.Contains(a.Name, "@") {
			return true
		}
	}
	for _, a := range m.Envelope.From {
		if a.Name != "" && !strings.Contains(rawFromValue(m), "<") {
			return true
		}
	}
	return false
}

func rawFromValue(m *Meta) string {
	for _, h := range m.Headers {
		if strings.EqualFold(h.Name, "from") {
			return h.Value
		}
	}
	return ""
}

func sameTrimmed(g, p [][2]string) bool {
	if len(g) != len(p) {
		return false
	}
	for i := range g {
		if g[i][1] != p[i][1] || g[i][0] != strings.TrimSpace(p[i][0]) {
			return false
		}
	}
	return true
}

func short(t [][2]string) string {
	if len(t) > 12 {
		return fmt.Sprintf("%v ... (%d parts)", t[:12], len(t))
	}
	return fmt.Sprint(t)
}
