package luapattern

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/yuin/gopher-lua/pm"
)

// FuzzSameAsGopherLua checks that this matcher finds what gopher-lua's
// does, for small subjects and patterns with few quantifiers (so that
// gopher-lua's matcher, which cannot be stopped, ends), except where the
// package doc says they differ (comparable skips those).
func FuzzSameAsGopherLua(f *testing.F) {
	for _, seed := range []struct{ p, s string }{
		{"a", "banana"}, {"(a)(n)", "banana"}, {"^b", "banana"}, {"a$", "banana"},
		{"%a+", "hello world"}, {"(%d+)-(%d+)", "10-20"}, {"[^%s]+", " x y "},
		{"%bxy", "axxyyb"}, {"()a()", "aa"}, {"(a*)%1", "aaaa"}, {"a-b", "aaab"},
		{"[a-c]*", "abcd"}, {"[]]", "]"}, {"[a-]", "-"}, {".-$", "abc"}, {"x?y", "y"},
		{"(a(b)c)", "abc"}, {"%w+%.%w+", "baepo.war"}, {"a%", "a"}, {"[a", "a"},
		{"(a", "a"}, {"a)", "a"}, {"%1", "a"}, {"%b(", "("},
	} {
		f.Add(seed.p, seed.s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, pattern, subject string, init uint8) {
		if len(pattern) > 16 || len(subject) > 32 || !comparable(pattern) {
			return
		}
		start := int(init) % (len(subject) + 1)
		theirs, theirErr, crashed := gopherFind(pattern, subject, start)
		if crashed {
			return // a bug of gopher-lua's, not a behaviour to keep
		}
		var ours string
		p, err := Compile(pattern)
		if err == nil {
			var m *Match
			m, err = p.Find(context.Background(), subject, start)
			ours = describe(m, subject)
		}
		if err != nil && theirErr == nil && strictOnly(err) {
			return
		}
		if (err != nil) != (theirErr != nil) {
			t.Fatalf("find %q in %q from %d: error %v, gopher-lua's %v", pattern, subject, start, err, theirErr)
		}
		if err == nil && ours != theirs {
			t.Fatalf("find %q in %q from %d: %s, gopher-lua %s", pattern, subject, start, ours, theirs)
		}
	})
}

// comparable reports whether gopher-lua is meant to match pattern as this
// package does (see the package doc) and surely ends: at most four
// quantifiers.
func comparable(pattern string) bool {
	if strings.Count(pattern, "*")+strings.Count(pattern, "+")+strings.Count(pattern, "-")+strings.Count(pattern, "?") > 4 {
		return false
	}
	if strings.Contains(pattern, "%f") {
		return false
	}
	if strings.Contains(pattern, "()") && strings.ContainsAny(pattern, "123456789") {
		return false // a back-reference to a position capture
	}
	// In a set, gopher-lua reads ranges its own way when a "-" is not
	// between two plain chars ([%a-z], [a--], [--a], [0-0-0]).
	for i := 0; i < len(pattern); i++ {
		if pattern[i] != '-' || !strings.Contains(pattern[:i], "[") {
			continue
		}
		plain := func(j int) bool {
			return j >= 0 && j < len(pattern) && !strings.ContainsRune("-%^[]", rune(pattern[j])) && (j == 0 || pattern[j-1] != '%')
		}
		if !plain(i-1) || !plain(i+1) || i >= 2 && pattern[i-2] == '-' {
			return false
		}
	}
	return true
}

// strictOnly reports whether err is one of the malformed patterns
// gopher-lua takes (see the package doc).
func strictOnly(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "ends with '%'") || strings.Contains(msg, "unbalanced pattern") ||
		strings.Contains(msg, "invalid capture index") // gopher-lua: only when matching reaches it
}

// gopherFind runs gopher-lua's matcher. crashed says it panicked.
func gopherFind(pattern, subject string, init int) (desc string, err error, crashed bool) {
	defer func() {
		if recover() != nil {
			crashed = true
		}
	}()
	mds, err := pm.Find(pattern, []byte(subject), init, 1)
	if err != nil || len(mds) == 0 {
		return "no match", err, false
	}
	md := mds[0]
	var b strings.Builder
	fmt.Fprintf(&b, "[%d,%d)", md.Capture(0), md.Capture(1))
	for i := 2; i+1 < md.CaptureLength(); i += 2 {
		if md.IsPosCapture(i) {
			fmt.Fprintf(&b, " %d", md.Capture(i))
		} else {
			fmt.Fprintf(&b, " %q", subject[md.Capture(i):md.Capture(i+1)])
		}
	}
	return b.String(), nil, false
}

func describe(m *Match, subject string) string {
	if m == nil {
		return "no match"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[%d,%d)", m.Start, m.End)
	for _, v := range m.Values(subject) {
		if len(m.Captures) == 0 {
			break
		}
		if n, ok := v.(int); ok {
			fmt.Fprintf(&b, " %d", n)
		} else {
			fmt.Fprintf(&b, " %q", v)
		}
	}
	return b.String()
}
