package proto

import (
	"math"
	"slices"
	"strings"
	"time"
)

// SearchKey is one search criterion (RFC 9051 §6.4.4). Op is upper case;
// AND holds Sub for a parenthesized list and the implicit conjunction.
type SearchKey struct {
	Op     string
	Str    string // string argument; header name for HEADER
	Value  string // HEADER value
	Num    uint64 // LARGER, SMALLER, MODSEQ, YOUNGER, OLDER
	Date   time.Time
	Set    NumSet // SEQ, UID
	Sub    []*SearchKey
	Binary bool
}

// SearchCommand is SEARCH's arguments (with ESEARCH RETURN, RFC 4731).
type SearchCommand struct {
	Return    []string // upper case; nil if no RETURN
	HasReturn bool
	Charset   string
	Key       *SearchKey
}

// WantsSave reports a SEARCH whose RETURN options name SAVE, also when the
// rest of it cannot be parsed (RFC 5182 §2.1: a failed SAVE empties "$").
func WantsSave(args []Value) bool {
	if len(args) < 2 || args[0].Kind != Atom || !strings.EqualFold(args[0].S, "RETURN") || args[1].Kind != List {
		return false
	}
	for _, o := range args[1].L {
		if o.Kind == Atom && strings.EqualFold(o.S, "SAVE") {
			return true
		}
	}
	return false
}

// ParseSearch parses SEARCH [RETURN (...)] [CHARSET x] keys.
func ParseSearch(args []Value) (*SearchCommand, error) {
	sc := &SearchCommand{}
	if len(args) >= 2 && args[0].Kind == Atom && strings.EqualFold(args[0].S, "RETURN") {
		if args[1].Kind != List {
			return nil, syntax("bad RETURN options")
		}
		sc.HasReturn = true
		for _, o := range args[1].L {
			if o.Kind != Atom {
				return nil, syntax("bad RETURN option")
			}
			u := strings.ToUpper(o.S)
			switch u {
			case "MIN", "MAX", "ALL", "COUNT", "SAVE":
			default:
				return nil, syntax("unknown RETURN option")
			}
			if !slices.Contains(sc.Return, u) { // RFC 4731 §3.1: each at most once in the answer
				sc.Return = append(sc.Return, u)
			}
		}
		args = args[2:]
	}
	if len(args) >= 2 && args[0].Kind == Atom && strings.EqualFold(args[0].S, "CHARSET") {
		cs, ok := args[1].AString()
		if !ok {
			return nil, syntax("bad charset")
		}
		sc.Charset = strings.ToUpper(cs)
		args = args[2:]
	}
	k, err := ParseSearchKeys(args)
	if err != nil {
		return nil, err
	}
	sc.Key = k
	return sc, nil
}

// ParseSearchKeys parses a conjunction of keys.
func ParseSearchKeys(args []Value) (*SearchKey, error) {
	if len(args) == 0 {
		return nil, syntax("missing search key")
	}
	and := &SearchKey{Op: "AND"}
	for len(args) > 0 {
		k, rest, err := parseKey(args, 0)
		if err != nil {
			return nil, err
		}
		and.Sub = append(and.Sub, k)
		args = rest
	}
	if len(and.Sub) == 1 {
		return and.Sub[0], nil
	}
	return and, nil
}

func parseKey(args []Value, depth int) (*SearchKey, []Value, error) {
	if depth > 64 {
		return nil, nil, syntax("search nested too deeply")
	}
	if len(args) == 0 {
		return nil, nil, syntax("missing search key")
	}
	v := args[0]
	args = args[1:]
	if v.Kind == List {
		if len(v.L) == 0 {
			return nil, nil, syntax("empty search list")
		}
		and := &SearchKey{Op: "AND"}
		rest := v.L
		for len(rest) > 0 {
			k, r, err := parseKey(rest, depth+1)
			if err != nil {
				return nil, nil, err
			}
			and.Sub = append(and.Sub, k)
			rest = r
		}
		return and, args, nil
	}
	if v.Kind != Atom {
		return nil, nil, syntax("bad search key")
	}
	op := strings.ToUpper(v.S)
	k := &SearchKey{Op: op}
	str := func() error {
		if len(args) == 0 {
			return syntax("missing search argument")
		}
		s, ok := args[0].AString()
		if !ok {
			return syntax("bad search argument")
		}
		k.Str = s
		args = args[1:]
		return nil
	}
	date := func() error {
		if err := str(); err != nil {
			return err
		}
		d, ok := ParseDate(k.Str)
		if !ok {
			return syntax("bad date")
		}
		k.Date, k.Str = d, ""
		return nil
	}
	num := func() error {
		if len(args) == 0 {
			return syntax("missing number")
		}
		n, ok := Number64(args[0])
		if !ok {
			return syntax("bad number")
		}
		k.Num = n
		args = args[1:]
		return nil
	}
	var err error
	switch op {
	case "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD", "RECENT", "SEEN",
		"UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN":
	case "BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO", "KEYWORD", "UNKEYWORD":
		err = str()
	case "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE":
		err = date()
	case "LARGER", "SMALLER": // number64 (RFC 9051 §9)
		err = num()
	case "YOUNGER", "OLDER": // nz-number of seconds (RFC 5032 §4)
		if err = num(); err == nil && (k.Num == 0 || k.Num > math.MaxUint32) {
			err = syntax("YOUNGER and OLDER take a number of seconds from 1 to 4294967295")
		}
	case "HEADER":
		if err = str(); err == nil {
			name := k.Str
			if err = str(); err == nil {
				k.Str, k.Value = name, k.Str
				if !validFieldName(name) {
					err = syntax("bad header name")
				}
			}
		}
	case "UID":
		if len(args) == 0 || args[0].Kind != Atom {
			return nil, nil, syntax("bad UID set")
		}
		k.Set, err = ParseNumSet(args[0].S)
		args = args[1:]
	case "NOT":
		var sub *SearchKey
		sub, args, err = parseKey(args, depth+1)
		k.Sub = []*SearchKey{sub}
	case "OR":
		var a, b *SearchKey
		if a, args, err = parseKey(args, depth+1); err == nil {
			b, args, err = parseKey(args, depth+1)
		}
		k.Sub = []*SearchKey{a, b}
	case "MODSEQ": // RFC 7162 §3.1.5: MODSEQ [entry-name entry-type] n
		if len(args) >= 3 && args[0].IsString() {
			args = args[2:]
		}
		err = num()
	default:
		set, e := ParseNumSet(v.S)
		if e != nil {
			return nil, nil, syntax("unknown search key")
		}
		k.Op, k.Set = "SEQ", set
	}
	if err != nil {
		return nil, nil, err
	}
	return k, args, nil
}

// HasText reports whether the key tree needs message text or headers.
func (k *SearchKey) HasText() bool {
	switch k.Op {
	case "BODY", "TEXT", "SUBJECT", "FROM", "TO", "CC", "BCC", "HEADER":
		return true
	}
	for _, s := range k.Sub {
		if s.HasText() {
			return true
		}
	}
	return false
}
