package luapattern

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFind(t *testing.T) {
	for _, tc := range []struct {
		pattern, subject string
		init             int
		want             string // describe's form, or the error
	}{
		{"a", "banana", 0, "[1,2)"},
		{"a", "banana", 2, "[3,4)"},
		{"^b", "banana", 0, "[0,1)"},
		{"^a", "banana", 0, "no match"},
		{"^a", "banana", 1, "[1,2)"},
		{"a$", "banana", 0, "[5,6)"},
		{"a$b", "a$b", 0, "[0,3)"},
		{"(%a+)=(%d+)", "port=8080", 0, `[0,9) "port" "8080"`},
		{"()ll()", "hello", 0, "[2,4) 3 5"},
		{"%bxy", "axxyyb", 0, "[1,5)"},
		{"(a*)%1", "aaaa", 0, `[0,4) "aa"`},
		{"a-b", "aaab", 0, "[0,4)"},
		{"a.-b", "axbxb", 0, "[0,3)"},
		{"a.*b", "axbxb", 0, "[0,5)"},
		{"x?y", "y", 0, "[0,1)"},
		{"[]]", "a]", 0, "[1,2)"},
		{"[^%s]+", "  ab ", 0, "[2,4)"},
		{"[%a-z]", "-", 0, "[0,1)"}, // %a, "-", "z": Lua 5.1, not gopher-lua
		{"%f[%w]%w+", "  word", 0, "[2,6)"},
		{"%f[%W]", "ab", 0, "[2,2)"},
		{"%u%l*", "the Baepo tool", 0, "[4,9)"},
		{"%x+", "zz0aF9g", 0, "[2,6)"},
		{"%p", "ab.c", 0, "[2,3)"},
		{"%z", "a\x00", 0, "[1,2)"},
		{"", "abc", 1, "[1,1)"},
		{"a", "abc", 4, "no match"},
		{"a%", "a", 0, "malformed pattern (ends with '%')"},
		{"[a", "a", 0, "malformed pattern (missing ']')"},
		{"(a", "a", 0, "unfinished capture"},
		{"a)", "a", 0, "invalid pattern capture"},
		{"(a%1)", "aa", 0, "invalid capture index"},
		{"%0", "a", 0, "invalid capture index"},
		{"%b(", "(", 0, "unbalanced pattern"},
		{"%fa", "a", 0, "missing '[' after '%f' in pattern"},
		{strings.Repeat("()", MaxCaptures+1), "", 0, "too many captures (at most 200)"},
		{strings.Repeat("a?", MaxDepth+1), strings.Repeat("a", MaxDepth+1), 0, "pattern too complex"},
	} {
		t.Run(tc.pattern[:min(len(tc.pattern), 16)], func(t *testing.T) {
			p, err := Compile(tc.pattern)
			var m *Match
			if err == nil {
				m, err = p.Find(context.Background(), tc.subject, tc.init)
			}
			got := describe(m, tc.subject)
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("find %q in %q from %d: %s, want %s", tc.pattern, tc.subject, tc.init, got, tc.want)
			}
		})
	}
}

// A pattern that backtracks for ever stops with the context's error.
func TestFindStopsWithContext(t *testing.T) {
	p, err := Compile(strings.Repeat("(a*)", 40) + "b")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			m, err := p.Find(ctx, strings.Repeat("a", 40), 0)
			if m != nil || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, %v; want %v", m, err, tc.want)
			}
		})
	}
}
