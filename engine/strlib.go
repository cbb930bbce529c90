package engine

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/baepo/baepo/engine/luapattern"
)

// installStringLib replaces gopher-lua's pattern functions (string.find,
// match, gmatch, gsub) with ones built on engine/luapattern, which stop
// when the Lua call's context is done, and puts a size check before the
// primitives that can allocate much in one call: string.rep, string.format
// and table.concat (gsub checks as it builds). Other string functions stay
// gopher-lua's.
func (s *sandbox) installStringLib() {
	L := s.L
	str := L.GetGlobal(lua.StringLibName).(*lua.LTable)
	for name, fn := range map[string]lua.LGFunction{
		"find":   strFind,
		"match":  strMatch,
		"gmatch": strGmatch,
		"gsub":   s.strGsub,
	} {
		str.RawSetString(name, L.NewFunction(fn))
	}
	str.RawSetString("gfind", str.RawGetString("gmatch"))
	s.guard(str, "string.rep", func(L *lua.LState) uint64 {
		s, n := uint64(len(L.CheckString(1))), L.CheckInt(2)
		if n <= 0 || s == 0 {
			return 0
		}
		if uint64(n) > math.MaxUint64/s {
			return math.MaxUint64
		}
		return s * uint64(n)
	})
	s.guard(str, "string.format", formatSize)
	tbl := L.GetGlobal(lua.TabLibName).(*lua.LTable)
	s.guard(tbl, "table.concat", concatSize)
}

// guard wraps the function what ("string.rep") of lib with a check that
// what it is about to allocate, as size says, stays within the flow memory
// limit.
func (s *sandbox) guard(lib *lua.LTable, what string, size func(L *lua.LState) uint64) {
	name := what[strings.IndexByte(what, '.')+1:]
	fn := lib.RawGetString(name).(*lua.LFunction).GFunction
	lib.RawSetString(name, s.L.NewFunction(func(L *lua.LState) int {
		need(L, s.flowMemory, what, size(L))
		return fn(L)
	}))
}

// formatSize is at least what string.format allocates: the format, its
// widths and precisions, and its string arguments.
func formatSize(L *lua.LState) uint64 {
	f := L.CheckString(1)
	n := uint64(len(f))
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		for i++; i < len(f) && strings.IndexByte("-+ #0.123456789", f[i]) >= 0; i++ {
			j := i
			for j < len(f) && '0' <= f[j] && f[j] <= '9' {
				j++
			}
			if j > i {
				w, err := strconv.ParseUint(f[i:j], 10, 63)
				if err != nil {
					w = 1 << 62
				}
				n += w
				i = j - 1
			}
		}
	}
	for i := 2; i <= L.GetTop(); i++ {
		if v, ok := L.Get(i).(lua.LString); ok {
			n += uint64(len(v))
		}
	}
	return n
}

// concatSize is what table.concat(t, sep, i, j) allocates.
func concatSize(L *lua.LState) uint64 {
	t := L.CheckTable(1)
	sep := uint64(len(L.OptString(2, "")))
	i, j := L.OptInt(3, 1), L.OptInt(4, t.Len())
	i, j = max(i, 1), min(j, t.Len())
	var n uint64
	for k := i; k <= j; k++ {
		switch v := t.RawGetInt(k).(type) {
		case lua.LString:
			n += uint64(len(v))
		case lua.LNumber:
			n += 24
		}
		if k < j {
			n += sep
		}
	}
	return n
}

// luaContext is the context the Lua call of L runs under.
func luaContext(L *lua.LState) context.Context {
	if ctx := L.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// checkPattern reads the pattern argument n of the function fn.
func checkPattern(L *lua.LState, fn string, n int) *luapattern.Pattern {
	p, err := luapattern.Compile(L.CheckString(n))
	if err != nil {
		L.RaiseError("%s: %v", fn, err)
	}
	return p
}

// find runs p.Find, raising the error of a malformed pattern or of a
// context done first in L. A context's error is the message's end, as
// worker.call expects.
func find(L *lua.LState, fn string, p *luapattern.Pattern, s string, init int) *luapattern.Match {
	m, err := p.Find(luaContext(L), s, init)
	if err != nil {
		L.RaiseError("%s: %v", fn, err)
	}
	return m
}

// pushValues pushes each value of m (see luapattern.Match.Values) and
// returns how many.
func pushValues(L *lua.LState, m *luapattern.Match, s string) int {
	vals := m.Values(s)
	for _, v := range vals {
		switch v := v.(type) {
		case int:
			L.Push(lua.LNumber(v))
		case string:
			L.Push(lua.LString(v))
		}
	}
	return len(vals)
}

// startIndex turns the Lua index i (1-based, negative from the end) into
// a byte offset, at least 0, as gopher-lua does.
func startIndex(s string, i int) int {
	if i > 0 {
		i--
	} else if i < 0 {
		i = len(s) + i
	}
	return max(i, 0)
}

// strFind is string.find(s, pattern [, init [, plain]]).
func strFind(L *lua.LState) int {
	s := L.CheckString(1)
	pat := L.CheckString(2)
	init := startIndex(s, L.OptInt(3, 1))
	if pat == "" {
		L.Push(lua.LNumber(1))
		L.Push(lua.LNumber(0))
		return 2
	}
	if init > len(s) {
		L.Push(lua.LNil)
		return 1
	}
	if L.GetTop() >= 4 && lua.LVAsBool(L.Get(4)) {
		pos := strings.Index(s[init:], pat)
		if pos < 0 {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LNumber(init + pos + 1))
		L.Push(lua.LNumber(init + pos + len(pat)))
		return 2
	}
	m := find(L, "string.find", checkPattern(L, "string.find", 2), s, init)
	if m == nil {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(lua.LNumber(m.Start + 1))
	L.Push(lua.LNumber(m.End))
	if len(m.Captures) == 0 {
		return 2
	}
	return 2 + pushValues(L, m, s)
}

// strMatch is string.match(s, pattern [, init]).
func strMatch(L *lua.LState) int {
	s := L.CheckString(1)
	p := checkPattern(L, "string.match", 2)
	init := startIndex(s, L.OptInt(3, 1))
	m := find(L, "string.match", p, s, init)
	if m == nil {
		L.Push(lua.LNil)
		return 1
	}
	return pushValues(L, m, s)
}

// strGmatch is string.gmatch(s, pattern). A leading "^" anchors the
// pattern at the start, as in gopher-lua: the iterator gives at most one
// match.
func strGmatch(L *lua.LState) int {
	s := L.CheckString(1)
	p := checkPattern(L, "string.gmatch", 2)
	pos := 0
	L.Push(L.NewFunction(func(L *lua.LState) int {
		if pos > len(s) {
			return 0
		}
		m := find(L, "string.gmatch", p, s, pos)
		switch {
		case m == nil || p.Anchored():
			pos = len(s) + 1
		case m.End > m.Start:
			pos = m.End
		default:
			pos = m.Start + 1
		}
		if m == nil {
			return 0
		}
		return pushValues(L, m, s)
	}))
	return 1
}

// strGsub is string.gsub(s, pattern, repl [, n]). repl is a string (%0 the
// match, %1-%9 captures, %% a %; any other %x stays as it is, as in
// gopher-lua), a table indexed by the first capture or a function called
// with the captures; false or nil keeps the match. At most n matches are
// replaced when n is given (none when n <= 0, as in Lua 5.1). The result
// is checked against the flow memory limit as it grows.
func (s *sandbox) strGsub(L *lua.LState) int {
	src := L.CheckString(1)
	p := checkPattern(L, "string.gsub", 2)
	L.CheckTypes(3, lua.LTString, lua.LTTable, lua.LTFunction)
	repl := L.Get(3)
	limit := -1
	if L.Get(4) != lua.LNil {
		limit = max(L.CheckInt(4), 0)
	}
	var b strings.Builder
	check := 0 // the result's size at which to look at the heap again
	grow := func(add string) {
		if n := b.Len() + len(add); n >= check {
			need(L, s.flowMemory, "string.gsub", uint64(n))
			check = n + bigAlloc
		}
		b.WriteString(add)
	}
	n, copied := 0, 0
	for at := 0; at <= len(src) && (limit < 0 || n < limit); {
		m := find(L, "string.gsub", p, src, at)
		if m == nil {
			break
		}
		n++
		grow(src[copied:m.Start])
		grow(replacement(L, repl, m, src))
		copied = m.End
		if m.End > m.Start {
			at = m.End
		} else {
			at = m.Start + 1
		}
		if p.Anchored() {
			break
		}
	}
	grow(src[copied:])
	L.Push(lua.LString(b.String()))
	L.Push(lua.LNumber(n))
	return 2
}

// replacement is what string.gsub puts in place of the match m.
func replacement(L *lua.LState, repl lua.LValue, m *luapattern.Match, src string) string {
	whole := src[m.Start:m.End]
	switch repl := repl.(type) {
	case lua.LString:
		r := string(repl)
		if strings.IndexByte(r, '%') < 0 {
			return r
		}
		var b strings.Builder
		for i := 0; i < len(r); i++ {
			c := r[i]
			if c != '%' || i+1 == len(r) {
				b.WriteByte(c)
				continue
			}
			i++
			switch d := r[i]; {
			case d == '%':
				b.WriteByte('%')
			case d == '0' || d == '1' && len(m.Captures) == 0:
				b.WriteString(whole)
			case '1' <= d && d <= '9':
				k := int(d - '1')
				if k >= len(m.Captures) {
					L.RaiseError("string.gsub: invalid capture index %%%c in the replacement", d)
				}
				b.WriteString(fmt.Sprint(m.Values(src)[k]))
			default:
				b.WriteByte('%')
				b.WriteByte(d)
			}
		}
		return b.String()
	case *lua.LTable:
		return replacedBy(L, L.GetTable(repl, firstValue(m, src)), whole)
	case *lua.LFunction:
		vals := m.Values(src)
		L.Push(repl)
		for _, v := range vals {
			L.Push(valueOf(v))
		}
		L.Call(len(vals), 1)
		ret := L.Get(-1)
		L.Pop(1)
		return replacedBy(L, ret, whole)
	}
	return whole
}

func firstValue(m *luapattern.Match, src string) lua.LValue { return valueOf(m.Values(src)[0]) }

func valueOf(v any) lua.LValue {
	if n, ok := v.(int); ok {
		return lua.LNumber(n)
	}
	return lua.LString(v.(string))
}

// replacedBy is what a table or function repl's value v puts in place of
// the match: false or nil keep it, a string or number replaces it.
func replacedBy(L *lua.LState, v lua.LValue, whole string) string {
	switch v := v.(type) {
	case lua.LString:
		return string(v)
	case lua.LNumber:
		return v.String()
	}
	if lua.LVIsFalse(v) {
		return whole
	}
	L.RaiseError("string.gsub: invalid replacement value (a %s)", v.Type())
	return ""
}
