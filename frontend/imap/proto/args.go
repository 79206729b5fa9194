package proto

import (
	"cmp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Range is lo:hi of a sequence set; 0 stands for "*".
type Range struct{ Lo, Hi uint32 }

// NumSet is a sequence-set (RFC 9051 §9) or "$" (RFC 5182 SEARCHRES).
type NumSet struct {
	Ranges []Range
	Saved  bool // "$"
	// fixed is the number of leading Ranges that ParseNumSet sorted and
	// merged (no "*" in them); the others hold "*".
	fixed int
}

// ParseNumSet parses a sequence-set.
func ParseNumSet(s string) (NumSet, error) {
	if s == "$" {
		return NumSet{Saved: true}, nil
	}
	if s == "" || len(s) > 1<<20 {
		return NumSet{}, syntax("bad sequence set")
	}
	var set NumSet
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := seqNum(lo)
		if err != nil {
			return NumSet{}, err
		}
		b := a
		if isRange {
			if b, err = seqNum(hi); err != nil {
				return NumSet{}, err
			}
		}
		set.Ranges = append(set.Ranges, Range{a, b})
	}
	return set.normalize(), nil
}

// normalize sorts and merges the ranges without "*" (a client may send
// 1,1,1,… thousands of times: Contains is then one binary search) and
// replaces those with "*" by at most two: the union of x:* over several x
// is exactly minX:* ∪ maxX:*, whatever "*" stands for.
func (s NumSet) normalize() NumSet {
	var fixed []Range
	var minX, maxX uint32 // over x of the x:* ranges
	bare := false         // "*" or "*:*"
	for _, r := range s.Ranges {
		switch x := r.Lo | r.Hi; {
		case r.Lo != 0 && r.Hi != 0:
			fixed = append(fixed, Range{min(r.Lo, r.Hi), max(r.Lo, r.Hi)})
		case x == 0:
			bare = true
		case minX == 0:
			minX, maxX = x, x
		default:
			minX, maxX = min(minX, x), max(maxX, x)
		}
	}
	slices.SortFunc(fixed, func(a, b Range) int { return cmp.Compare(a.Lo, b.Lo) })
	merged := fixed[:0]
	for _, r := range fixed {
		if n := len(merged); n > 0 && uint64(r.Lo) <= uint64(merged[n-1].Hi)+1 {
			merged[n-1].Hi = max(merged[n-1].Hi, r.Hi)
			continue
		}
		merged = append(merged, r)
	}
	out := NumSet{Ranges: merged, fixed: len(merged)}
	if bare {
		out.Ranges = append(out.Ranges, Range{0, 0})
	}
	if minX != 0 {
		out.Ranges = append(out.Ranges, Range{minX, 0})
	}
	if maxX != minX {
		out.Ranges = append(out.Ranges, Range{maxX, 0})
	}
	return out
}

func seqNum(s string) (uint32, error) {
	if s == "*" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 || s[0] == '+' {
		return 0, syntax("bad sequence number")
	}
	return uint32(n), nil
}

// Contains reports whether n is in the set, given the value of "*".
func (s NumSet) Contains(n, star uint32) bool {
	if s.fixed > 0 {
		i := sort.Search(s.fixed, func(i int) bool { return s.Ranges[i].Hi >= n })
		if i < s.fixed && s.Ranges[i].Lo <= n {
			return true
		}
	}
	for _, r := range s.Ranges[s.fixed:] {
		lo, hi := r.Lo, r.Hi
		if lo == 0 {
			lo = star
		}
		if hi == 0 {
			hi = star
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if n >= lo && n <= hi {
			return true
		}
	}
	return false
}

// Number parses a number (RFC 9051 §9 number, up to 2^32-1).
func Number(v Value) (uint32, bool) {
	if v.Kind != Atom {
		return 0, false
	}
	n, err := strconv.ParseUint(v.S, 10, 32)
	return uint32(n), err == nil && v.S[0] != '+'
}

// Number64 parses a mod-sequence value (RFC 7162 §7, 63 bits).
func Number64(v Value) (uint64, bool) {
	if v.Kind != Atom {
		return 0, false
	}
	n, err := strconv.ParseUint(v.S, 10, 63)
	return n, err == nil && v.S[0] != '+'
}

var months = []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// ParseDate parses a search date "d-Mon-yyyy" (RFC 9051 §9 date).
func ParseDate(s string) (time.Time, bool) {
	parts := strings.Split(s, "-")
	if len(parts) != 3 || len(parts[0]) < 1 || len(parts[0]) > 2 || len(parts[2]) != 4 {
		return time.Time{}, false
	}
	d, err1 := strconv.Atoi(parts[0])
	y, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || d < 1 || d > 31 {
		return time.Time{}, false
	}
	for i, m := range months {
		if strings.EqualFold(m, parts[1]) {
			t := time.Date(y, time.Month(i+1), d, 0, 0, 0, 0, time.UTC)
			if t.Day() != d {
				return time.Time{}, false
			}
			return t, true
		}
	}
	return time.Time{}, false
}

// ParseDateTime parses "dd-Mon-yyyy hh:mm:ss +zzzz" (RFC 9051 §9 date-time).
func ParseDateTime(s string) (time.Time, bool) {
	s = strings.TrimLeft(s, " ")
	t, err := time.Parse("2-Jan-2006 15:04:05 -0700", s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// FormatDateTime formats an INTERNALDATE.
func FormatDateTime(t time.Time) string { return t.Format("02-Jan-2006 15:04:05 -0700") }

// Section is a body section (RFC 9051 §6.4.5).
type Section struct {
	Part      []int
	Specifier string   // "", HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
	Fields    []string // for HEADER.FIELDS[.NOT], upper case
}

// String renders the section as the server writes it back.
func (s Section) String() string {
	var b strings.Builder
	for i, n := range s.Part {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(n))
	}
	if s.Specifier != "" {
		if len(s.Part) > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.Specifier)
	}
	if len(s.Fields) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(s.Fields, " "))
		b.WriteByte(')')
	}
	return b.String()
}

// FetchItem is one fetch attribute (RFC 9051 §6.4.5).
type FetchItem struct {
	Name    string // UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY MODSEQ EMAILID THREADID RFC822 RFC822.HEADER RFC822.TEXT BODY[] BINARY[] BINARY.SIZE
	Section Section
	Peek    bool
	Partial bool
	Offset  uint32
	Count   uint32
}

// ParseFetchItems parses the fetch attribute argument: a macro, one item,
// or a list.
func ParseFetchItems(v Value) ([]FetchItem, error) {
	var vals []Value
	switch v.Kind {
	case Atom:
		switch strings.ToUpper(v.S) {
		case "ALL":
			return names("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"), nil
		case "FAST":
			return names("FLAGS", "INTERNALDATE", "RFC822.SIZE"), nil
		case "FULL":
			return names("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"), nil
		}
		vals = []Value{v}
	case List:
		vals = v.L
		if len(vals) == 0 {
			return nil, syntax("empty fetch list")
		}
	default:
		return nil, syntax("bad fetch attributes")
	}
	var out []FetchItem
	for _, x := range vals {
		if x.Kind != Atom {
			return nil, syntax("bad fetch attribute")
		}
		it, err := parseFetchItem(x.S)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}

func names(ns ...string) []FetchItem {
	out := make([]FetchItem, len(ns))
	for i, n := range ns {
		out[i].Name = n
	}
	return out
}

func parseFetchItem(s string) (FetchItem, error) {
	name, rest, hasSection := strings.Cut(s, "[")
	name = strings.ToUpper(name)
	if !hasSection {
		switch name {
		case "UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY",
			"MODSEQ", "EMAILID", "THREADID", "RFC822", "RFC822.HEADER", "RFC822.TEXT", "SAVEDATE":
			return FetchItem{Name: name}, nil
		}
		return FetchItem{}, syntax("unknown fetch attribute")
	}
	var it FetchItem
	switch name {
	case "BODY", "BODY.PEEK":
		it.Name = "BODY[]"
	case "BINARY", "BINARY.PEEK":
		it.Name = "BINARY[]"
	case "BINARY.SIZE":
		it.Name = "BINARY.SIZE"
	default:
		return FetchItem{}, syntax("unknown fetch attribute")
	}
	it.Peek = strings.HasSuffix(name, ".PEEK")
	end := strings.LastIndexByte(rest, ']')
	if end < 0 {
		return FetchItem{}, syntax("bad section")
	}
	sec, partial := rest[:end], rest[end+1:]
	var err error
	if it.Section, err = parseSection(sec, it.Name != "BODY[]"); err != nil {
		return FetchItem{}, err
	}
	if partial != "" {
		if it.Name == "BINARY.SIZE" || len(partial) < 5 || partial[0] != '<' || partial[len(partial)-1] != '>' {
			return FetchItem{}, syntax("bad partial")
		}
		o, c, ok := strings.Cut(partial[1:len(partial)-1], ".")
		on, err1 := strconv.ParseUint(o, 10, 32)
		cn, err2 := strconv.ParseUint(c, 10, 32)
		if !ok || err1 != nil || err2 != nil || cn == 0 {
			return FetchItem{}, syntax("bad partial")
		}
		it.Partial, it.Offset, it.Count = true, uint32(on), uint32(cn)
	}
	return it, nil
}

func parseSection(s string, partOnly bool) (Section, error) {
	var sec Section
	if s == "" {
		return sec, nil
	}
	spec := s
	for spec != "" && spec[0] >= '0' && spec[0] <= '9' {
		num, rest, _ := strings.Cut(spec, ".")
		n, err := strconv.ParseUint(num, 10, 31)
		if err != nil || n == 0 || len(sec.Part) >= 64 {
			return sec, syntax("bad section part")
		}
		sec.Part = append(sec.Part, int(n))
		spec = rest
		if rest == "" && strings.HasSuffix(s, ".") {
			return sec, syntax("bad section")
		}
	}
	if spec == "" {
		return sec, nil
	}
	if partOnly {
		return sec, syntax("bad binary section")
	}
	word, list, hasList := strings.Cut(spec, " ")
	word = strings.ToUpper(word)
	switch word {
	case "HEADER", "TEXT":
	case "MIME":
		if len(sec.Part) == 0 {
			return sec, syntax("MIME needs a part")
		}
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		if !hasList || len(list) < 3 || list[0] != '(' || list[len(list)-1] != ')' {
			return sec, syntax("bad header list")
		}
		for _, f := range strings.Fields(list[1 : len(list)-1]) {
			f = strings.Trim(f, `"`)
			if f == "" || !validFieldName(f) {
				return sec, syntax("bad header field name")
			}
			sec.Fields = append(sec.Fields, strings.ToUpper(f))
		}
		if len(sec.Fields) == 0 {
			return sec, syntax("empty header list")
		}
		hasList = false
	default:
		return sec, syntax("bad section text")
	}
	if hasList {
		return sec, syntax("bad section")
	}
	sec.Specifier = word
	return sec, nil
}

// validFieldName: printable ASCII except ":" (RFC 5322 §3.6.8 ftext).
func validFieldName(f string) bool {
	if len(f) > 200 {
		return false
	}
	for i := 0; i < len(f); i++ {
		if f[i] <= ' ' || f[i] >= 0x7f || f[i] == ':' || f[i] == '(' || f[i] == ')' || f[i] == '"' || f[i] == '\\' {
			return false
		}
	}
	return true
}

// Flags parses a flag list or a single flag.
func Flags(v Value) ([]string, error) {
	vals := []Value{v}
	if v.Kind == List {
		vals = v.L
	}
	out := make([]string, 0, len(vals))
	for _, f := range vals {
		if f.Kind != Atom {
			return nil, syntax("bad flag")
		}
		out = append(out, f.S)
	}
	return out, nil
}
