// Package failpoint lets tests stop a mutation between two of its steps,
// as a crash would (DESIGN §2.5). Unarmed, Inject costs one atomic load.
package failpoint

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Action is what an armed failpoint does.
type Action int

const (
	// Error makes Inject return ErrInjected; the caller abandons the
	// mutation as if the process had died there.
	Error Action = iota
	// Exit kills the process at once (os.Exit(137)) with nothing flushed.
	Exit
	// Panic panics.
	Panic
	// Call runs the function given to EnableFunc, then goes on (tests
	// that make something happen at an exact point of a mutation).
	Call
)

// ErrInjected is returned by Inject for an armed Error failpoint.
var ErrInjected = errors.New("failpoint: injected crash")

var (
	any   atomic.Bool
	mu    sync.Mutex
	armed = map[string]Action{}
	hits  = map[string]int{}
	after = map[string]int{} // fire only from this hit on (1-based)
	funcs = map[string]func(){}
)

// EnableFunc arms a failpoint that calls fn each time it fires.
func EnableFunc(name string, fn func()) {
	mu.Lock()
	funcs[name] = fn
	mu.Unlock()
	Enable(name, Call)
}

// EnableAfter arms a failpoint that fires from its n-th hit on.
func EnableAfter(name string, a Action, n int) {
	mu.Lock()
	after[name] = n
	mu.Unlock()
	Enable(name, a)
}

// Enable arms a failpoint.
func Enable(name string, a Action) {
	mu.Lock()
	defer mu.Unlock()
	armed[name] = a
	any.Store(true)
}

// Disable disarms one failpoint.
func Disable(name string) {
	mu.Lock()
	defer mu.Unlock()
	delete(armed, name)
	any.Store(len(armed) > 0)
}

// Reset disarms all failpoints and clears hit counts.
func Reset() {
	mu.Lock()
	defer mu.Unlock()
	armed = map[string]Action{}
	hits = map[string]int{}
	after = map[string]int{}
	funcs = map[string]func(){}
	any.Store(false)
}

// Hits reports how often an armed failpoint fired.
func Hits(name string) int {
	mu.Lock()
	defer mu.Unlock()
	return hits[name]
}

// Inject fires the failpoint name if armed.
func Inject(name string) error {
	if !any.Load() {
		return nil
	}
	mu.Lock()
	a, ok := armed[name]
	if ok {
		hits[name]++
		ok = hits[name] >= after[name]
	}
	fn := funcs[name]
	mu.Unlock()
	if !ok {
		return nil
	}
	switch a {
	case Call:
		fn()
		return nil
	case Exit:
		fmt.Fprintf(os.Stderr, "failpoint %s: exit\n", name)
		os.Exit(137)
	case Panic:
		panic("failpoint " + name)
	}
	return fmt.Errorf("%w at %s", ErrInjected, name)
}

// FromEnv arms failpoints listed as "name=exit,name2=error,name3=exit@5"
// (the value of STOA_FAILPOINTS; @N fires from the N-th hit on), for tests
// that run the real binary.
func FromEnv(spec string) error {
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, act, _ := strings.Cut(item, "=")
		act, nth, hasN := strings.Cut(act, "@")
		n := 0
		if hasN {
			var err error
			if n, err = strconv.Atoi(nth); err != nil || n < 1 {
				return fmt.Errorf("failpoint %s: bad hit count %q", name, nth)
			}
		}
		var a Action
		switch act {
		case "exit", "":
			a = Exit
		case "error":
			a = Error
		case "panic":
			a = Panic
		default:
			return fmt.Errorf("failpoint %s: unknown action %q", name, act)
		}
		EnableAfter(name, a, n)
	}
	return nil
}
